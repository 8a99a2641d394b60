# Charts from shuttle_scenarios' CSV (gnuplot 5.4, Debian's gnuplot-nox):
#   gnuplot -e "csv='docs/bench/results.csv'; outdir='docs/bench'" bench/plot.gp
# writes sweep-cap10.png, sweep-cap1024.png (items/s vs producers x consumers per peer, log
# scale, one panel per payload), latency.png (ping-pong round trip p50/p99 per peer) and
# notes.png (the notes scenarios, items/s per peer).
#
# Every peer has one fixed colour in every chart (peer_colour below). The bar charts are drawn
# from a table with one column per peer and one row per group (scenario, or p50/p99), so a peer
# that failed or was skipped leaves an empty slot: it never shifts the other bars or labels.
if (!exists("csv")) csv = 'docs/bench/results.csv'
if (!exists("outdir")) outdir = 'docs/bench'
set datafile separator ','
set datafile missing 'NaN'
set terminal pngcairo size 1400,900 font ',10' noenhanced

# CSV columns: 1 scenario, 3 producers, 5 capacity, 6 payload, 8 peer, 9 status,
# 11 items_per_s, 16 p50_us, 17 p99_us.
peer_colour(p) = \
    p eq 'shuttle'       ? 0xd62728 : \
    p eq 'shuttle-pipe'  ? 0xff7f0e : \
    p eq 'boost-mq'      ? 0x1f77b4 : \
    p eq 'posix-mq'      ? 0x2ca02c : \
    p eq 'pipe'          ? 0x8c564b : \
    p eq 'socketpair'    ? 0xe377c2 : \
    p eq 'python'        ? 0x7f7f7f : \
    p eq 'zmq'           ? 0xbcbd22 : \
    p eq 'lockfree*'     ? 0x17becf : \
    p eq 'atomic_queue*' ? 0x9467bd : \
    p eq 'moodycamel*'   ? 0x393b79 : \
    p eq 'pthread-mutex' ? 0x637939 : \
    p eq 'boost-mutex'   ? 0x843c39 : \
    p eq 'posix-sem'     ? 0x7b4173 : 0x000000

# Peers in the order of the CSV (shuttle first), every one that took part (ok or failed).
peers = system(sprintf("awk -F, 'NR>1 && $1==\"sweep\" && $9!=\"skipped\" && !seen[$8]++ {print $8}' %s", csv))
set key outside right top
set grid
set logscale y
set logscale x 2
set xtics ("1x1" 1, "2x2" 2, "4x4" 4, "8x8" 8)
set xrange [0.8:10]

capacities = system(sprintf("awk -F, 'NR>1 && $1==\"sweep\" && $9==\"ok\" && !seen[$5]++ {print $5}' %s", csv))
payloads = system(sprintf("awk -F, 'NR>1 && $1==\"sweep\" && $9==\"ok\" && !seen[$6]++ {print $6}' %s", csv))
do for [capacity in capacities] {
    set output sprintf('%s/sweep-cap%s.png', outdir, capacity)
    set multiplot layout 2,2 title sprintf("items/s across processes vs producers x consumers, capacity %s (2 cores; * = threads in one process; a missing point = failed or skipped)", capacity)
    do for [payload in payloads] {
        set title sprintf("%s B messages", payload)
        set ylabel 'items/s (median)'
        plot for [peer in peers] csv using \
            ((strcol(1) eq 'sweep' && strcol(5) eq capacity && strcol(6) eq payload && strcol(8) eq peer && strcol(9) eq 'ok') ? $3 : NaN):11 \
            with linespoints lw 2 lc rgb peer_colour(peer) title peer
    }
    unset multiplot
}

unset logscale x
unset xtics
set xtics auto
set xrange [*:*]
set style data histograms
set style histogram clustered gap 2
set style fill solid 0.9 border -1
set boxwidth 0.9
set key outside right top

# Bar charts: an awk filter makes one row per group and one column per peer (NaN where
# the peer has no figure). Latency: groups p50 and p99, one bar per peer.
bar_peers = system(sprintf("awk -F, 'NR>1 && $1==\"ping-pong\" && $9!=\"skipped\" && !seen[$8]++ {printf \"%%s \", $8}' %s", csv))
set output sprintf('%s/latency.png', outdir)
set title 'ping-pong round trip between two processes, 8 B (log scale; * = threads; an empty slot = failed)'
set ylabel 'microseconds'
latency = sprintf("< awk -F, -v peers='%s' '\
    BEGIN { np = split(peers, P, \" \") } \
    NR>1 && $1==\"ping-pong\" && $9==\"ok\" { p50[$8] = $16; p99[$8] = $17 } \
    END { l1 = \"p50\"; l2 = \"p99\"; \
          for (p = 1; p <= np; p++) { l1 = l1 \",\" (P[p] in p50 ? p50[P[p]] : \"NaN\"); \
                                      l2 = l2 \",\" (P[p] in p99 ? p99[P[p]] : \"NaN\") } \
          print l1; print l2 }' %s", bar_peers, csv)
plot for [i=1:words(bar_peers)] latency using (column(i+1)):xtic(1) \
    lc rgb peer_colour(word(bar_peers, i)) title word(bar_peers, i)

# The notes' scenarios: one group per scenario (and payload), one bar per peer.
bar_peers = system(sprintf("awk -F, 'NR>1 && ($1==\"notes-1x1\" || $1==\"notes-3x2\" || $1==\"notes-joinable\" || $1==\"notes-pipe\") && $9!=\"skipped\" && !seen[$8]++ {printf \"%%s \", $8}' %s", csv))
set output sprintf('%s/notes.png', outdir)
set title "the notes' scenarios across processes, items/s (log scale; * = threads; an empty slot = failed or skipped)"
set ylabel 'items/s (median)'
notes = sprintf("< awk -F, -v peers='%s' '\
    BEGIN { np = split(peers, P, \" \"); \
            ng = split(\"notes-1x1/8 notes-3x2/8 notes-3x2/1024 notes-joinable/8 notes-pipe/8 notes-pipe/1024 notes-pipe/65536\", G, \" \") } \
    NR>1 && $9==\"ok\" { v[$1 \"/\" $6, $8] = $11 } \
    END { for (g = 1; g <= ng; g++) { split(G[g], parts, \"/\"); \
            size = parts[2] >= 1024 ? (parts[2] / 1024) \" KiB\" : parts[2] \" B\"; \
            line = parts[1] \" \" size; \
            for (p = 1; p <= np; p++) line = line \",\" ((G[g], P[p]) in v ? v[G[g], P[p]] : \"NaN\"); \
            print line } }' %s", bar_peers, csv)
plot for [i=1:words(bar_peers)] notes using (column(i+1)):xtic(1) \
    lc rgb peer_colour(word(bar_peers, i)) title word(bar_peers, i)
