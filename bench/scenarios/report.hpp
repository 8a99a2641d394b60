// Results of a scenario run: the rows (one per configuration and peer), their summaries, the
// terminal tables (fmt), and the CSV / JSON files beside them.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "transport.hpp"

namespace shuttle::bench {

struct Row {
    RunSpec spec;
    std::string peer;
    std::optional<std::string> skipped;  // why the peer did not run this configuration
    std::vector<Measurement> runs;       // one per repetition

    // Summary (valid when status() == "ok").
    std::string status() const;  // "ok", "skipped: ...", "FAILED: ..."
    bool ok() const;
    bool failed() const;
    double rate_median() const;  // items/s
    double rate_min() const;
    double rate_max() const;
    double megabytes_per_second() const;
    double cpu_per_million() const;  // CPU seconds per million items (median)
    double items_median() const;       // items moved per repetition (a budget may cut it)
    double seconds_median() const;
    double mean_round_trip_s() const;  // ping_pong
    double cpu_percent() const;        // idle: CPU time / window, % of one core (median)
    double cpu_percent_min() const;
    double cpu_percent_max() const;
    double p50_us() const;
    double p99_us() const;
};

struct Report {
    std::vector<Row> rows;
    std::vector<std::string> notes;
    std::string reference = "shuttle";  // ratios are against this peer
    std::string machine;                // for the header of the files
    std::string date;
    int repetitions = 3;

    /// Prints the tables of one scenario (rows whose spec.scenario == scenario).
    void print_scenario(std::FILE* out, const std::string& scenario) const;
    void write_csv(const std::string& path) const;
    void write_json(const std::string& path) const;
    void write_markdown(const std::string& path, const std::vector<std::string>& scenarios) const;
    int failures() const;
};

std::string human(double value);  // 12.3M, 456k, 789

}  // namespace shuttle::bench
