#include "report.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace shuttle::bench {
namespace {

double median_of(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    auto n = values.size();
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::string size_text(std::size_t bytes) {
    return bytes >= 1024 ? fmt::format("{} KiB", bytes / 1024) : fmt::format("{} B", bytes);
}

/// A GitHub markdown table (markdown needs no column alignment; the terminal tables are
/// printed by Google Benchmark's ConsoleReporter, see TerminalSection).
class MarkdownTable {
  public:
    explicit MarkdownTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    std::string markdown() const {
        std::string text;
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            text += "|";
            for (const auto& cell : rows_[r]) text += fmt::format(" {} |", cell);
            text += "\n";
            if (r == 0) {
                text += "|";
                for (std::size_t i = 0; i < rows_[r].size(); ++i) text += i ? "---:|" : "---|";
                text += "\n";
            }
        }
        return text;
    }

  private:
    std::vector<std::vector<std::string>> rows_;
};

/// The terminal form of a section: one benchmark::BenchmarkReporter::Run per measured row,
/// laid out by Google Benchmark's ConsoleReporter in tabular mode (the library sizes and
/// aligns the columns); the skipped rows are listed under the table.
struct TerminalSection {
    std::vector<benchmark::BenchmarkReporter::Run> runs;
    std::vector<std::string> skipped;
};

class TableReporter : public benchmark::ConsoleReporter {
  public:
    TableReporter() : ConsoleReporter(OO_Tabular) {}
    void print(std::FILE* out, const TerminalSection& section) {
        std::ostringstream text;
        SetOutputStream(&text);
        SetErrorStream(&text);
        name_field_width_ = 10;
        for (const auto& run : section.runs) {
            name_field_width_ = std::max(name_field_width_, run.benchmark_name().size());
        }
        printed_header_ = false;
        prev_counters_.clear();
        ReportRuns(section.runs);
        fmt::print(out, "{}", text.str());
        for (const auto& line : section.skipped) fmt::print(out, "skipped: {}\n", line);
    }
};

std::string ratio_text(double reference, double value) {
    if (reference <= 0 || value <= 0) return "-";
    return fmt::format("{:.2f}x", reference / value);
}

struct Section {
    std::string title;
    MarkdownTable table;
    TerminalSection terminal;
};

bool same_config(const RunSpec& a, const RunSpec& b) {
    return a.scenario == b.scenario && a.kind == b.kind && a.producers == b.producers &&
           a.consumers == b.consumers && a.capacity == b.capacity && a.payload == b.payload;
}

const Row* find_row(const std::vector<Row>& rows, const RunSpec& spec, const std::string& peer) {
    for (const auto& row : rows) {
        if (row.peer == peer && same_config(row.spec, spec)) return &row;
    }
    return nullptr;
}

/// A cell's figure, or an explicit marker: never an empty or dropped cell.
std::string cell_text(const Row& row, const std::string& figure) {
    if (row.ok()) return figure;
    if (row.failed()) return "failed";
    return "skipped";
}

/// The terminal row of one measured Row: Time = wall ns per item (per round trip), CPU = CPU
/// ns per item of every process of the run, Iterations = items moved (median of the
/// repetitions), then the counters. A failed row is ConsoleReporter's "ERROR OCCURRED" line.
benchmark::BenchmarkReporter::Run terminal_run(const Report& report, const Row& row,
                                               std::string name) {
    using benchmark::Counter;
    benchmark::BenchmarkReporter::Run run;
    run.run_name.function_name = std::move(name);
    run.run_name.args = row.peer;
    run.time_unit = benchmark::kNanosecond;
    const Row* reference = find_row(report.rows, row.spec, report.reference);
    // NaN (printed "nan"): no ratio, because the reference failed or was skipped. A failed
    // row gets the same counters, so ConsoleReporter does not print a new header for it.
    const bool compare = row.ok() && reference && reference->ok();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (!row.ok()) {
        if (row.spec.kind == Kind::idle) {
            for (auto name : {"CPU % of a core", "max %"}) run.counters[name] = Counter(nan);
        } else if (row.spec.kind == Kind::ping_pong) {
            for (auto name : {"p50 ns", "p99 ns"}) run.counters[name] = Counter(nan);
            run.counters[fmt::format("peer/{} p50", report.reference)] = Counter(nan);
        } else {
            for (auto name : {"MB/s", "items/s", "items/s max", "items/s min"}) {
                run.counters[name] = Counter(nan);
            }
            run.counters[fmt::format("{}/peer", report.reference)] = Counter(nan);
        }
        run.error_occurred = true;
        auto status = row.status();
        run.error_message = status.rfind("FAILED: ", 0) == 0 ? status.substr(8) : status;
        return run;
    }
    if (row.spec.kind == Kind::idle) {
        run.iterations = 1;
        run.time_unit = benchmark::kSecond;
        run.real_accumulated_time = row.seconds_median();
        run.cpu_accumulated_time = row.cpu_percent() / 100 * row.seconds_median();
        run.counters["CPU % of a core"] = Counter(row.cpu_percent());
        run.counters["max %"] = Counter(row.cpu_percent_max());
    } else {
        const double items = std::max(row.items_median(), 1.0);
        run.iterations = static_cast<benchmark::IterationCount>(items);
        if (row.spec.kind == Kind::ping_pong) {
            run.real_accumulated_time = row.mean_round_trip_s() * items;
            run.counters["p50 ns"] = Counter(row.p50_us() * 1e3);
            run.counters["p99 ns"] = Counter(row.p99_us() * 1e3);
            run.counters[fmt::format("peer/{} p50", report.reference)] =
                Counter(compare ? row.p50_us() / reference->p50_us() : nan);
        } else {
            run.real_accumulated_time = items / row.rate_median();
            run.counters["MB/s"] = Counter(row.megabytes_per_second());
            run.counters["items/s"] = Counter(row.rate_median());
            run.counters["items/s max"] = Counter(row.rate_max());
            run.counters["items/s min"] = Counter(row.rate_min());
            run.counters[fmt::format("{}/peer", report.reference)] =
                Counter(compare ? reference->rate_median() / row.rate_median() : nan);
        }
        run.cpu_accumulated_time = row.cpu_per_million() / 1e6 * items;
    }
    auto status = row.status();
    if (status != "ok") run.report_label = status;
    return run;
}

void add_skipped(TerminalSection& terminal, const Row& row, const std::string& where) {
    auto line = fmt::format("{} at {}: {}", row.peer, where, *row.skipped);
    // One line per peer and reason: "posix-mq at 1x1, 2x2: ..."
    auto same = fmt::format(": {}", *row.skipped);
    for (auto& existing : terminal.skipped) {
        if (existing.rfind(row.peer + " at ", 0) == 0 && existing.size() > same.size() &&
            existing.compare(existing.size() - same.size(), same.size(), same) == 0) {
            existing.insert(existing.size() - same.size(), ", " + where);
            return;
        }
    }
    terminal.skipped.push_back(line);
}

/// The sections (titled tables) of one scenario.
std::vector<Section> sections_of(const Report& report, const std::string& scenario) {
    std::vector<Section> sections;
    std::vector<const Row*> rows;
    for (const auto& row : report.rows) {
        if (row.spec.scenario == scenario) rows.push_back(&row);
    }
    if (rows.empty()) return sections;
    const std::string& ref = report.reference;
    auto ref_header = fmt::format("{}/peer", ref);

    if (scenario == "sweep") {
        // One table per capacity x payload. Markdown: peers down, producers x consumers across;
        // terminal: one line per producers x consumers and peer.
        std::vector<std::pair<std::size_t, std::size_t>> groups;  // (capacity, payload)
        std::vector<int> widths;
        std::vector<std::string> peers;
        for (const auto* row : rows) {
            std::pair<std::size_t, std::size_t> group{row->spec.capacity, row->spec.payload};
            if (std::find(groups.begin(), groups.end(), group) == groups.end())
                groups.push_back(group);
            if (std::find(widths.begin(), widths.end(), row->spec.producers) == widths.end()) {
                widths.push_back(row->spec.producers);
            }
            if (std::find(peers.begin(), peers.end(), row->peer) == peers.end())
                peers.push_back(row->peer);
        }
        std::sort(widths.begin(), widths.end());
        for (auto [capacity, payload] : groups) {
            std::vector<std::string> header{"peer"};
            for (int w : widths) {
                header.push_back(fmt::format("{}x{} items/s", w, w));
                header.push_back(ref_header);
            }
            std::string cpu_header = "CPU s/M items";
            for (int w : widths) cpu_header += fmt::format(" {}x{}", w, w);
            header.push_back(cpu_header);
            MarkdownTable table(header);
            TerminalSection terminal;
            auto spec_at = [&](int w) {
                RunSpec spec = rows.front()->spec;
                spec.producers = spec.consumers = w;
                spec.capacity = capacity;
                spec.payload = payload;
                return spec;
            };
            for (const auto& peer : peers) {
                std::vector<std::string> cells{peer};
                std::vector<std::string> cpu;  // one entry per width, a marker where no figure
                for (int w : widths) {
                    RunSpec spec = spec_at(w);
                    const Row* row = find_row(report.rows, spec, peer);
                    const Row* reference = find_row(report.rows, spec, ref);
                    if (!row) {
                        cells.insert(cells.end(), {"-", "-"});
                        cpu.push_back("-");
                        continue;
                    }
                    cells.push_back(cell_text(*row, human(row->rate_median())));
                    cells.push_back(row->ok() && reference && reference->ok()
                                        ? ratio_text(reference->rate_median(), row->rate_median())
                                        : "-");
                    cpu.push_back(cell_text(*row, fmt::format("{:.2f}", row->cpu_per_million())));
                }
                cells.push_back(fmt::format("{}", fmt::join(cpu, " / ")));
                table.add(cells);
            }
            for (int w : widths) {
                for (const auto& peer : peers) {
                    const Row* row = find_row(report.rows, spec_at(w), peer);
                    if (!row) continue;
                    if (row->skipped) {
                        add_skipped(terminal, *row, fmt::format("{}x{}", w, w));
                    } else {
                        terminal.runs.push_back(
                            terminal_run(report, *row, fmt::format("{}x{}", w, w)));
                    }
                }
            }
            sections.push_back(
                {fmt::format("sweep: capacity {}, {} messages, items/s (median of {})", capacity,
                             size_text(payload), report.repetitions),
                 std::move(table), std::move(terminal)});
        }
        return sections;
    }

    // The other scenarios: one table per payload size (notes-3x2 8 B / 1 KiB, notes-pipe ...).
    std::vector<std::size_t> payloads;
    for (const auto* row : rows) {
        if (std::find(payloads.begin(), payloads.end(), row->spec.payload) == payloads.end()) {
            payloads.push_back(row->spec.payload);
        }
    }
    const Kind kind = rows.front()->spec.kind;
    const bool latency = kind == Kind::ping_pong;
    const bool idle = kind == Kind::idle;
    for (auto payload : payloads) {
        std::vector<std::string> header{"peer", "config"};
        if (latency) {
            header.insert(header.end(), {"p50 us", "p99 us", fmt::format("peer/{} p50", ref),
                                         "CPU s/M round trips", "status"});
        } else if (idle) {
            header.insert(header.end(), {"CPU % of a core", "min-max", "status"});
        } else {
            header.insert(header.end(), {"items/s", "min-max", "MB/s", "CPU s/M items",
                                         ref_header, "status"});
        }
        MarkdownTable table(header);
        TerminalSection terminal;
        const RunSpec* first = nullptr;
        for (const auto* row : rows) {
            if (row->spec.payload != payload) continue;
            if (!first) first = &row->spec;
            const Row* reference = find_row(report.rows, row->spec, ref);
            bool compare = row->ok() && reference && reference->ok();
            std::vector<std::string> cells{row->peer, row->spec.label()};
            if (!row->ok()) {
                for (std::size_t i = 2; i + 1 < header.size(); ++i) {
                    cells.push_back(row->failed() ? "failed" : "-");
                }
            } else if (latency) {
                cells.push_back(fmt::format("{:.2f}", row->p50_us()));
                cells.push_back(fmt::format("{:.2f}", row->p99_us()));
                cells.push_back(compare ? ratio_text(row->p50_us(), reference->p50_us()) : "-");
                cells.push_back(fmt::format("{:.2f}", row->cpu_per_million()));
            } else if (idle) {
                cells.push_back(fmt::format("{:.3f}", row->cpu_percent()));
                cells.push_back(
                    fmt::format("{:.3f}-{:.3f}", row->cpu_percent_min(), row->cpu_percent_max()));
            } else {
                cells.push_back(human(row->rate_median()));
                cells.push_back(
                    fmt::format("{}-{}", human(row->rate_min()), human(row->rate_max())));
                cells.push_back(fmt::format("{:.1f}", row->megabytes_per_second()));
                cells.push_back(fmt::format("{:.2f}", row->cpu_per_million()));
                cells.push_back(compare ? ratio_text(reference->rate_median(), row->rate_median())
                                        : "-");
            }
            cells.push_back(row->status());
            table.add(cells);
            if (row->skipped) {
                add_skipped(terminal, *row, row->spec.label());
            } else {
                terminal.runs.push_back(terminal_run(report, *row, row->spec.label()));
            }
        }
        std::string title;
        if (latency) {
            title = fmt::format(
                "{}: round trip between two processes, up to {} round trips, median of {}",
                scenario, first->items_per_producer, report.repetitions);
        } else if (idle) {
            title = fmt::format(
                "{}: CPU used by a consumer blocked on an empty channel for {:.1f} s, % of "
                "one core, median of {}",
                scenario, first->budget_seconds, report.repetitions);
        } else if (kind == Kind::tickets) {
            title = fmt::format("{}: {} processes buy a stock of {} under a lock, tickets/s",
                                scenario, first->producers, first->items_per_producer);
        } else {
            title = fmt::format("{}: {} items per producer, {} messages, median of {}", scenario,
                                first->items_per_producer, size_text(payload),
                                report.repetitions);
        }
        sections.push_back({title, std::move(table), std::move(terminal)});
    }
    return sections;
}

}  // namespace

std::string human(double value) {
    if (value >= 1e9) return fmt::format("{:.2f}G", value / 1e9);
    if (value >= 1e6) return fmt::format("{:.2f}M", value / 1e6);
    if (value >= 1e3) return fmt::format("{:.1f}k", value / 1e3);
    return fmt::format("{:.0f}", value);
}

bool Row::failed() const {
    if (skipped) return false;
    return std::any_of(runs.begin(), runs.end(), [](const Measurement& m) { return !m.ok; });
}
bool Row::ok() const {
    return !skipped && !runs.empty() && !failed();
}

std::string Row::status() const {
    if (skipped) return "skipped: " + *skipped;
    for (const auto& run : runs) {
        if (!run.ok) return "FAILED: " + run.error;
    }
    for (const auto& run : runs) {
        if (!run.note.empty()) return run.note;
    }
    return "ok";
}

namespace {
template <class F>
std::vector<double> collect(const std::vector<Measurement>& runs, F f) {
    std::vector<double> values;
    for (const auto& run : runs) {
        if (run.ok) values.push_back(f(run));
    }
    return values;
}
double rate(const Measurement& m) {
    return m.seconds > 0 ? double(m.items) / m.seconds : 0;
}
}  // namespace

double Row::rate_median() const {
    return median_of(collect(runs, rate));
}
double Row::rate_min() const {
    auto values = collect(runs, rate);
    return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
}
double Row::rate_max() const {
    auto values = collect(runs, rate);
    return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}
double Row::megabytes_per_second() const {
    return rate_median() * double(spec.payload) / 1e6;
}
double Row::cpu_per_million() const {
    return median_of(collect(runs, [](const Measurement& m) {
        return m.items ? m.cpu_seconds / double(m.items) * 1e6 : 0;
    }));
}
double Row::items_median() const {
    return median_of(collect(runs, [](const Measurement& m) { return double(m.items); }));
}
double Row::seconds_median() const {
    return median_of(collect(runs, [](const Measurement& m) { return m.seconds; }));
}
double Row::mean_round_trip_s() const {
    return median_of(collect(runs, [](const Measurement& m) {
        return m.items ? m.seconds / double(m.items) : 0;
    }));
}
namespace {
double percent(const Measurement& m) {
    return m.seconds > 0 ? m.cpu_seconds / m.seconds * 100 : 0;
}
}  // namespace
double Row::cpu_percent() const {
    return median_of(collect(runs, percent));
}
double Row::cpu_percent_min() const {
    auto values = collect(runs, percent);
    return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
}
double Row::cpu_percent_max() const {
    auto values = collect(runs, percent);
    return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}
double Row::p50_us() const {
    return median_of(collect(runs, [](auto& m) { return m.p50_us; }));
}
double Row::p99_us() const {
    return median_of(collect(runs, [](auto& m) { return m.p99_us; }));
}

int Report::failures() const {
    return static_cast<int>(
        std::count_if(rows.begin(), rows.end(), [](const Row& r) { return r.failed(); }));
}

void Report::print_scenario(std::FILE* out, const std::string& scenario) const {
    for (const auto& section : sections_of(*this, scenario)) {
        fmt::print(out, "\n== {} ==\n", section.title);
        TableReporter().print(out, section.terminal);
    }
    std::fflush(out);
}

void Report::write_markdown(const std::string& path,
                            const std::vector<std::string>& scenarios) const {
    std::ofstream out(path);
    out << fmt::format("# shuttle scenario run — {} — {}\n\n", date, machine);
    out << fmt::format(
        "Ratios: `{0}/peer` = {0}'s items/s divided by the peer's (above 1: {0} is "
        "faster); for latency `peer/{0} p50` (above 1: {0} is faster). Peers marked "
        "* are threads in one process (in-process ceilings), not processes.\n\n",
        reference);
    for (const auto& scenario : scenarios) {
        for (const auto& section : sections_of(*this, scenario)) {
            out << "### " << section.title << "\n\n" << section.table.markdown() << "\n";
        }
    }
    if (!notes.empty()) {
        out << "Notes:\n\n";
        for (const auto& note : notes) out << "- " << note << "\n";
    }
}

void Report::write_csv(const std::string& path) const {
    std::ofstream out(path);
    out << "scenario,kind,producers,consumers,capacity,payload,items_per_producer,peer,status,"
           "repetitions,items_per_s,items_per_s_min,items_per_s_max,mb_per_s,cpu_s_per_million,"
           "p50_us,p99_us,ratio_vs_reference,idle_cpu_percent,items_median\n";
    for (const auto& row : rows) {
        const Row* reference = find_row(rows, row.spec, this->reference);
        double ratio = 0;
        if (row.ok() && reference && reference->ok()) {
            ratio = row.spec.kind == Kind::ping_pong ? row.p50_us() / reference->p50_us()
                                                     : reference->rate_median() / row.rate_median();
        }
        std::string status = row.ok() ? "ok" : row.failed() ? "failed" : "skipped";
        out << fmt::format(
            "{},{},{},{},{},{},{},{},{},{},{:.0f},{:.0f},{:.0f},{:.2f},{:.4f},{:.3f},"
            "{:.3f},{:.3f},{:.4f},{:.0f}\n",
            row.spec.scenario, kind_name(row.spec.kind), row.spec.producers, row.spec.consumers,
            row.spec.capacity, row.spec.payload, row.spec.items_per_producer, row.peer, status,
            row.runs.size(), row.rate_median(), row.rate_min(), row.rate_max(),
            row.megabytes_per_second(), row.cpu_per_million(), row.p50_us(), row.p99_us(), ratio,
            row.spec.kind == Kind::idle ? row.cpu_percent() : 0.0, row.items_median());
    }
}

void Report::write_json(const std::string& path) const {
    nlohmann::json document;
    document["date"] = date;
    document["machine"] = machine;
    document["reference"] = reference;
    document["notes"] = notes;
    auto& list = document["rows"] = nlohmann::json::array();
    for (const auto& row : rows) {
        nlohmann::json entry{{"scenario", row.spec.scenario},
                             {"kind", kind_name(row.spec.kind)},
                             {"producers", row.spec.producers},
                             {"consumers", row.spec.consumers},
                             {"capacity", row.spec.capacity},
                             {"payload", row.spec.payload},
                             {"items_per_producer", row.spec.items_per_producer},
                             {"budget_seconds", row.spec.budget_seconds},
                             {"peer", row.peer},
                             {"status", row.status()}};
        if (row.ok()) {
            entry["items_per_s"] = {
                {"median", row.rate_median()}, {"min", row.rate_min()}, {"max", row.rate_max()}};
            entry["mb_per_s"] = row.megabytes_per_second();
            entry["cpu_s_per_million"] = row.cpu_per_million();
            entry["items_median"] = row.items_median();
            if (row.spec.kind == Kind::idle) entry["idle_cpu_percent"] = row.cpu_percent();
            if (row.spec.kind == Kind::ping_pong) {
                entry["p50_us"] = row.p50_us();
                entry["p99_us"] = row.p99_us();
            }
        }
        auto& runs = entry["runs"] = nlohmann::json::array();
        for (const auto& run : row.runs) {
            runs.push_back({{"ok", run.ok},
                            {"error", run.error},
                            {"items", run.items},
                            {"seconds", run.seconds},
                            {"cpu_seconds", run.cpu_seconds},
                            {"p50_us", run.p50_us},
                            {"p99_us", run.p99_us}});
        }
        list.push_back(std::move(entry));
    }
    std::ofstream(path) << document.dump(2) << "\n";
}

}  // namespace shuttle::bench
