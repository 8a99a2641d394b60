#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
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

/// A table whose columns fmt aligns (each column as wide as its widest cell).
class Table {
  public:
    explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void print(std::FILE* out) const {
        std::vector<std::size_t> widths(rows_.front().size(), 0);
        for (const auto& row : rows_) {
            for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
                widths[i] = std::max(widths[i], row[i].size());
            }
        }
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            std::string line;
            for (std::size_t i = 0; i < rows_[r].size(); ++i) {
                // The first column and any status text are left-aligned, figures right-aligned.
                if (i == 0 || i + 1 == rows_[r].size()) {
                    line += fmt::format("{:<{}}  ", rows_[r][i], widths[i]);
                } else {
                    line += fmt::format("{:>{}}  ", rows_[r][i], widths[i]);
                }
            }
            while (!line.empty() && line.back() == ' ') line.pop_back();
            fmt::print(out, "{}\n", line);
            if (r == 0) {
                std::size_t total = 0;
                for (auto width : widths) total += width + 2;
                fmt::print(out, "{:-<{}}\n", "", total - 2);
            }
        }
    }
    /// The same table as GitHub markdown.
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

std::string ratio_text(double reference, double value) {
    if (reference <= 0 || value <= 0) return "-";
    return fmt::format("{:.2f}x", reference / value);
}

struct Section {
    std::string title;
    Table table;
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

std::string cell_text(const Row& row) {
    if (row.ok()) return human(row.rate_median());
    if (row.failed()) return "FAILED";
    return "skipped";
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
        // One table per capacity x payload: peers down, producers x consumers across.
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
            header.push_back("CPU s/M items (1x1..)");
            Table table(header);
            for (const auto& peer : peers) {
                std::vector<std::string> cells{peer};
                std::string cpu;
                for (int w : widths) {
                    RunSpec spec = rows.front()->spec;
                    spec.producers = spec.consumers = w;
                    spec.capacity = capacity;
                    spec.payload = payload;
                    const Row* row = find_row(report.rows, spec, peer);
                    const Row* reference = find_row(report.rows, spec, ref);
                    if (!row) {
                        cells.insert(cells.end(), {"-", "-"});
                        continue;
                    }
                    cells.push_back(cell_text(*row));
                    cells.push_back(row->ok() && reference && reference->ok()
                                        ? ratio_text(reference->rate_median(), row->rate_median())
                                        : "-");
                    if (row->ok())
                        cpu += (cpu.empty() ? "" : " ") +
                               fmt::format("{:.2f}", row->cpu_per_million());
                }
                cells.push_back(cpu.empty() ? "-" : cpu);
                table.add(cells);
            }
            sections.push_back(
                {fmt::format("sweep: capacity {}, {} messages, items/s (median of {})", capacity,
                             size_text(payload), report.repetitions),
                 std::move(table)});
        }
        return sections;
    }

    const bool latency = rows.front()->spec.kind == Kind::ping_pong;
    std::vector<std::string> header{"peer", "config"};
    if (latency) {
        header.insert(header.end(), {"p50 us", "p99 us", fmt::format("peer/{} p50", ref),
                                     "CPU s/M round trips", "status"});
    } else {
        header.insert(header.end(),
                      {"items/s", "min-max", "MB/s", "CPU s/M items", ref_header, "status"});
    }
    Table table(header);
    for (const auto* row : rows) {
        const Row* reference = find_row(report.rows, row->spec, ref);
        bool compare = row->ok() && reference && reference->ok();
        std::vector<std::string> cells{row->peer, row->spec.label()};
        if (!row->ok()) {
            for (std::size_t i = 2; i + 1 < header.size(); ++i) cells.push_back("-");
        } else if (latency) {
            cells.push_back(fmt::format("{:.2f}", row->p50_us()));
            cells.push_back(fmt::format("{:.2f}", row->p99_us()));
            cells.push_back(compare ? ratio_text(row->p50_us(), reference->p50_us()) : "-");
            cells.push_back(fmt::format("{:.2f}", row->cpu_per_million()));
        } else {
            cells.push_back(human(row->rate_median()));
            cells.push_back(fmt::format("{}-{}", human(row->rate_min()), human(row->rate_max())));
            cells.push_back(fmt::format("{:.1f}", row->megabytes_per_second()));
            cells.push_back(fmt::format("{:.2f}", row->cpu_per_million()));
            cells.push_back(compare ? ratio_text(reference->rate_median(), row->rate_median())
                                    : "-");
        }
        cells.push_back(row->status());
        table.add(cells);
    }
    const auto& spec = rows.front()->spec;
    std::string title;
    if (latency) {
        title = fmt::format("{}: round trip between two processes, {} round trips, median of {}",
                            scenario, spec.items_per_producer, report.repetitions);
    } else if (spec.kind == Kind::tickets) {
        title = fmt::format("{}: {} processes buy a stock of {} under a lock, tickets/s", scenario,
                            spec.producers, spec.items_per_producer);
    } else {
        title = fmt::format("{}: {} items per producer (payload-scaled), median of {}", scenario,
                            spec.items_per_producer, report.repetitions);
    }
    sections.push_back({title, std::move(table)});
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
        section.table.print(out);
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
           "p50_us,p99_us,ratio_vs_reference\n";
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
            "{:.3f},{:.3f}\n",
            row.spec.scenario, kind_name(row.spec.kind), row.spec.producers, row.spec.consumers,
            row.spec.capacity, row.spec.payload, row.spec.items_per_producer, row.peer, status,
            row.runs.size(), row.rate_median(), row.rate_min(), row.rate_max(),
            row.megabytes_per_second(), row.cpu_per_million(), row.p50_us(), row.p99_us(), ratio);
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
                             {"peer", row.peer},
                             {"status", row.status()}};
        if (row.ok()) {
            entry["items_per_s"] = {
                {"median", row.rate_median()}, {"min", row.rate_min()}, {"max", row.rate_max()}};
            entry["mb_per_s"] = row.megabytes_per_second();
            entry["cpu_s_per_million"] = row.cpu_per_million();
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
