// Builds docs/reproduction.md and its learning-curve chart from the run folders that
// scripts/reproduce_table.sh fills (<runs>/<row>_seed<s>/ with metrics.json, bounds.json and
// wall_seconds), beside the figures of Jang, Gu & Poole (2017), Table 1.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "chart.hpp"
#include "files.hpp"

namespace {

namespace fs = std::filesystem;

/// One row of the table: our estimator and the paper's figure for it.
struct Row {
  std::string name;   ///< run-folder prefix
  std::string label;  ///< as the paper names it
  double paper;       ///< test negative ELBO in the paper's Table 1 (VAE, categorical)
  double target;      ///< the figure ours must reach (at most)
};

const std::vector<Row> kRows = {
    {"soft", "Gumbel-Softmax", 101.5, 102.5},
    {"st", "ST Gumbel-Softmax", 107.8, 108.8},
    {"gumbel-rao", "Gumbel-Rao (M = 10), ST forward", 107.8, 107.8},
};

struct Stats {
  double mean = NAN, sd = NAN;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(v.size());
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(sq / double(v.size() - 1)) : 0.0;
  return s;
}

std::string num(double v, int digits = 2) {
  if (!std::isfinite(v)) return "–";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot be opened");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

struct Run {
  int seed = 0;
  double nelbo = NAN, iw = NAN, wall = NAN;
  std::string commit = "unknown";
  std::vector<double> epochs, curve;  ///< test -ELBO (one discrete code per image) per epoch
  nlohmann::json settings;
};

std::vector<Run> runs_of(const fs::path& dir, const std::string& row) {
  std::vector<Run> runs;
  if (!fs::is_directory(dir)) return runs;
  std::map<int, fs::path> found;
  const std::string prefix = row + "_seed";
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !fs::exists(entry.path() / "bounds.json")) continue;
    found[std::stoi(name.substr(prefix.size()))] = entry.path();
  }
  for (const auto& [seed, path] : found) {
    Run r;
    r.seed = seed;
    const auto bounds = read_json(path / "bounds.json");
    r.nelbo = bounds.at("nelbo");
    r.iw = bounds.at("iw_nll");
    r.settings = bounds.at("settings");
    const auto metrics = read_json(path / "metrics.json");
    for (const auto& e : metrics.at("epochs")) {
      r.epochs.push_back(e.at("epoch").get<double>());
      r.curve.push_back(e.at("test_nelbo").is_number() ? e.at("test_nelbo").get<double>() : NAN);
    }
    std::ifstream wall(path / "wall_seconds");
    if (!(wall >> r.wall)) r.wall = NAN;
    std::ifstream commit(path / "commit");
    if (!(commit >> r.commit)) r.commit = "unknown";
    runs.push_back(std::move(r));
  }
  return runs;
}

}  // namespace

int main(int argc, char** argv) {
  std::string runs_dir = "out/reproduction";
  std::string markdown = "docs/reproduction.md";
  std::string svg = "docs/reproduction_curves.svg";
  std::string commit = "unknown";
  std::string date = "unknown";
  std::string command = "bash scripts/reproduce_table.sh";
  std::string machine = "unknown";
  std::string notes;
  CLI::App app{"Write the reproduction page of Jang et al. (2017), Table 1, from finished runs."};
  app.add_option("--runs", runs_dir, "Folder with <row>_seed<s>/ run folders")
      ->capture_default_str();
  app.add_option("--markdown", markdown, "Page to write")->capture_default_str();
  app.add_option("--svg", svg, "Learning-curve chart to write")->capture_default_str();
  app.add_option("--commit", commit, "Commit that produced the runs");
  app.add_option("--date", date, "Date of the runs");
  app.add_option("--command", command, "Command that produced the runs");
  app.add_option("--machine", machine, "Machine the runs ran on");
  app.add_option("--notes", notes, "Markdown file appended after the table (protocol, analysis)");
  CLI11_PARSE(app, argc, argv);

  try {
    std::ostringstream md;
    md << "# Reproducing Jang et al. (2017), Table 1: the categorical VAE\n\n"
       << "Test negative ELBO in nats (lower is better) of a VAE with 20 categorical latents of "
          "10 classes on binarized MNIST, estimated with discrete (one-hot) codes, "
          "beside the figures of Jang, Gu & Poole, \"Categorical Reparameterization with "
          "Gumbel-Softmax\", ICLR 2017, Table 1.\n\n"
       << "Produced on " << date << " (commit " << commit << ") on " << machine << " with\n\n```\n"
       << command << "\n```\n\n"
       << "| row | paper | ours: mean ± sd over seeds | ours − paper | target | met | "
          "importance-weighted bound (m = 1000) | seeds | minutes per run (seed: minutes) |\n"
       << "|---|---|---|---|---|---|---|---|---|\n";
    std::ostringstream per_run;
    per_run << "| row | seed | −ELBO | importance-weighted bound | minutes | commit |\n"
            << "|---|---|---|---|---|---|\n";
    examples::Chart chart;
    chart.title = "Test negative ELBO (one discrete code per image) while training";
    chart.x_label = "epoch";
    chart.y_label = "nats";
    double total_minutes = 0;
    std::map<std::string, Stats> nelbo_of;
    for (const Row& row : kRows) {
      const auto runs = runs_of(runs_dir, row.name);
      std::vector<double> nelbo, iw, wall;
      std::string minutes;
      for (const Run& r : runs) {
        minutes +=
            (minutes.empty() ? "" : ", ") + std::to_string(r.seed) + ": " + num(r.wall / 60.0, 1);
        per_run << "| " << row.label << " | " << r.seed << " | " << num(r.nelbo) << " | "
                << num(r.iw) << " | " << num(r.wall / 60.0, 1) << " | `" << r.commit << "` |\n";
        nelbo.push_back(r.nelbo);
        iw.push_back(r.iw);
        if (std::isfinite(r.wall)) wall.push_back(r.wall / 60.0);
        total_minutes += std::isfinite(r.wall) ? r.wall / 60.0 : 0.0;
      }
      const Stats n = stats(nelbo), w = stats(iw);
      nelbo_of[row.name] = n;
      md << "| " << row.label << " | " << num(row.paper, 1) << " | " << num(n.mean) << " ± "
         << num(n.sd) << " | " << num(n.mean - row.paper) << " | ≤ " << num(row.target, 1) << " | "
         << (runs.empty()           ? "–"
             : n.mean <= row.target ? "yes"
                                    : "no")
         << " | " << num(w.mean) << " ± " << num(w.sd) << " | " << runs.size() << " | "
         << (minutes.empty() ? "–" : minutes) << " |\n";
      // The mean curve over seeds that have every epoch.
      if (!runs.empty()) {
        examples::Series s;
        s.name = row.label;
        const std::size_t epochs = runs.front().curve.size();
        for (std::size_t e = 0; e < epochs; ++e) {
          double sum = 0;
          int count = 0;
          for (const Run& r : runs) {
            if (e < r.curve.size() && std::isfinite(r.curve[e])) sum += r.curve[e], ++count;
          }
          if (count == int(runs.size())) {
            s.x.push_back(runs.front().epochs[e]);
            s.y.push_back(sum / count);
          }
        }
        chart.series.push_back(std::move(s));
      }
    }
    md << "\nThe runs' wall times add up to " << num(total_minutes, 1)
       << " minutes, each run with `--threads 1` (runs that shared the machine took longer; "
          "see Time below). "
          "The Gumbel-Rao row must also lie below our ST Gumbel-Softmax figure by more than "
          "the spread over seeds: ";
    const Stats st = nelbo_of["st"], gr = nelbo_of["gumbel-rao"];
    if (std::isfinite(st.mean) && std::isfinite(gr.mean)) {
      const double gap = st.mean - gr.mean;
      md << "it lies " << num(gap) << " nats below, against a spread of "
         << num(std::max(st.sd, gr.sd)) << " (" << (gap > std::max(st.sd, gr.sd) ? "met" : "missed")
         << ").\n\n";
    } else {
      md << "not measured.\n\n";
    }
    md << "Each run:\n\n" << per_run.str() << "\n";
    const std::string svg_name = fs::path(svg).filename().string();
    md << "![Test negative ELBO per epoch, mean over seeds](" << svg_name << ")\n\n";
    if (!notes.empty()) {
      std::ifstream in(notes);
      if (!in) throw std::runtime_error(notes + ": cannot be opened");
      md << in.rdbuf();
    }
    examples::write_chart(svg, chart);
    examples::write_file_atomic(markdown, md.str());
    std::cout << "wrote " << markdown << " and " << svg << "\n";
  } catch (const std::exception& e) {
    std::cerr << "vae_report: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
