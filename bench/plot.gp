# Charts from shuttle_scenarios' CSV (gnuplot 5.4, Debian's gnuplot-nox):
#   gnuplot -e "csv='docs/bench/results.csv'; outdir='docs/bench'" bench/plot.gp
# writes sweep-cap10.png, sweep-cap1024.png (items/s vs producers x consumers per peer, log
# scale, one panel per payload), latency.png (ping-pong round trip p50/p99 per peer) and
# notes.png (the notes scenarios, items/s per peer).
if (!exists("csv")) csv = 'docs/bench/results.csv'
if (!exists("outdir")) outdir = 'docs/bench'
set datafile separator ','
set datafile missing 'NaN'
peers = system(sprintf("awk -F, 'NR>1 && $1==\"sweep\" && $9==\"ok\" && !seen[$8]++ {print $8}' %s", csv))
set terminal pngcairo size 1400,900 font ',10' noenhanced
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
    set multiplot layout 2,2 title sprintf("items/s across processes vs producers x consumers, capacity %s (2 cores; * = threads in one process)", capacity)
    do for [payload in payloads] {
        set title sprintf("%s B messages", payload)
        set ylabel 'items/s (median)'
        plot for [peer in peers] csv using \
            ((strcol(1) eq 'sweep' && strcol(5) eq capacity && strcol(6) eq payload && strcol(8) eq peer && strcol(9) eq 'ok') ? $3 : NaN):11 \
            with linespoints lw 2 title peer
    }
    unset multiplot
}

unset logscale x
unset xtics
set xtics auto
set xrange [*:*]
set output sprintf('%s/latency.png', outdir)
set title 'ping-pong round trip between two processes, 8 B (log scale; * = threads)'
set ylabel 'microseconds'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
plot "< awk -F, 'NR>1 && $1==\"ping-pong\" && $9==\"ok\"' ".csv using 16:xtic(8) title 'p50', \
     '' using 17 title 'p99'

set output sprintf('%s/notes.png', outdir)
set title "the notes' scenarios across processes, items/s (log scale; * = threads)"
set ylabel 'items/s (median)'
plot for [scenario in "notes-1x1 notes-3x2 notes-joinable"] \
    sprintf("< awk -F, 'NR>1 && $1==\"%s\" && $9==\"ok\"' %s", scenario, csv) using 11:xtic(8) title scenario
