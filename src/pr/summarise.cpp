#include "llmgw/pr/summarise.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <utility>

#include "llmgw/llm/token_budget.hpp"
#include "llmgw/review/react_parser.hpp"

namespace llmgw::pr {
namespace {

constexpr std::string_view kSystemPrompt =
    "You are a senior software engineer who writes pull request summaries for reviewers. Be "
    "concise and concrete. Base every statement on the diff and the description; never invent "
    "behaviour that the diff does not show. Name functions, files and settings exactly.";

constexpr std::string_view kMarkdownTemplate =
    "Write the summary in Markdown with exactly these sections:\n"
    "## What changed and why\n"
    "(one short paragraph, then bullet points for the main changes)\n"
    "## Risk areas\n"
    "(bullet points: what could break, what deserves a careful review; 'None found' if none)\n";

constexpr std::string_view kFilesTemplate =
    "## Files\n"
    "(one bullet per file: `path`: one line saying what changed in it)\n";

const nlohmann::json& overview_schema() {
  static const nlohmann::json schema = {
      {"type", "object"},
      {"properties",
       {{"what_changed", {{"type", "string"}}},
        {"why", {{"type", "string"}}},
        {"risk_areas", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
      {"required", {"what_changed", "why", "risk_areas"}}};
  return schema;
}

nlohmann::json full_schema() {
  auto schema = overview_schema();
  schema["properties"]["files"] = {
      {"type", "array"},
      {"items",
       {{"type", "object"},
        {"properties", {{"path", {{"type", "string"}}}, {"summary", {{"type", "string"}}}}},
        {"required", {"path", "summary"}}}}};
  schema["required"].push_back("files");
  return schema;
}

std::string pr_header(const github::PullRequest& pr, std::int64_t description_tokens) {
  const auto& meta = pr.meta;
  std::string text = "Pull request " + pr.repo.full_name() + "#" + std::to_string(meta.number) +
                     ": " + meta.title + "\n";
  text += "Author: " + meta.author + ". Merging " + meta.head_ref + " into " + meta.base_ref +
          ". " + std::to_string(pr.files.size()) + " files changed.\n";
  if (!meta.body.empty()) {
    text += "Description:\n" + llm::truncate_to_tokens(meta.body, description_tokens) + "\n";
  }
  return text;
}

class Session {
 public:
  Session(llm::ChatClient& client, const SummariseOptions& options, Summary& summary)
      : client_(client), options_(options), summary_(summary) {}

  llm::ChatResult ask(const std::string& prompt, std::int64_t reply_tokens,
                      std::optional<nlohmann::json> schema, const llm::TokenCallback& on_token) {
    llm::ChatRequest request;
    request.messages = {llm::Message::system(std::string{kSystemPrompt}),
                        llm::Message::user(prompt)};
    request.json_schema = std::move(schema);
    request.temperature = 0.2;
    request.max_tokens = static_cast<int>(reply_tokens);
    request.seed = options_.seed;
    request.session_id = options_.session_id;
    auto result = client_.chat(request, on_token);
    ++summary_.llm_calls;
    summary_.prompt_tokens += result.prompt_tokens;
    summary_.completion_tokens += result.completion_tokens;
    return result;
  }

  void progress(const std::string& line) const {
    if (options_.on_progress) {
      options_.on_progress(line);
    }
  }

 private:
  llm::ChatClient& client_;
  const SummariseOptions& options_;
  Summary& summary_;
};

nlohmann::json parse_model_json(const std::string& content) {
  auto parsed = nlohmann::json::parse(content, nullptr, false);
  if (parsed.is_object()) {
    return parsed;
  }
  if (auto extracted = review::extract_json_object(content)) {
    return std::move(*extracted);
  }
  throw llm::ApiError(0, "the model's answer is not the JSON that was asked for",
                      "the model's answer is not the JSON that was asked for");
}

std::string string_field(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

void read_overview(const nlohmann::json& fields, Summary& summary) {
  summary.what_changed = string_field(fields, "what_changed");
  summary.why = string_field(fields, "why");
  if (const auto risks = fields.find("risk_areas"); risks != fields.end() && risks->is_array()) {
    for (const auto& risk : *risks) {
      if (risk.is_string()) {
        summary.risk_areas.push_back(risk.get<std::string>());
      }
    }
  }
}

std::string files_markdown(const std::vector<FileSummary>& files) {
  std::string text = "## Files\n";
  for (const auto& file : files) {
    text += "- `" + file.path + "` (" + file.status + "): " + file.summary + "\n";
  }
  return text;
}

std::string left_out_markdown(const Summary& summary, std::int64_t context_tokens) {
  if (summary.left_out.empty()) {
    return {};
  }
  std::string text =
      "\n## Files left out\nNot read: the pull request is larger than the model's "
      "context budget (" +
      std::to_string(context_tokens) + " tokens).\n";
  for (const auto& path : summary.left_out) {
    text += "- `" + path + "`\n";
  }
  return text;
}

std::string render_fields_markdown(const Summary& summary) {
  std::string text = "## What changed and why\n" + summary.what_changed + "\n";
  if (!summary.why.empty()) {
    text += "\n" + summary.why + "\n";
  }
  text += "\n## Risk areas\n";
  for (const auto& risk : summary.risk_areas) {
    text += "- " + risk + "\n";
  }
  if (summary.risk_areas.empty()) {
    text += "None found.\n";
  }
  return text + "\n" + files_markdown(summary.files);
}

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  const auto first = text.find_first_not_of(" -*");
  const auto last = text.find_last_not_of(' ');
  return first == std::string::npos ? std::string{} : text.substr(first, last - first + 1);
}

// Map: a one-line summary per file, shrinking a patch that the model still finds too long.
std::optional<std::string> summarise_file(Session& session, const std::string& header,
                                          const std::string& section, std::int64_t budget,
                                          const SummariseOptions& options) {
  auto allowed = budget;
  for (int attempt = 0; attempt < 3; ++attempt, allowed /= 2) {
    const std::string prompt =
        header + "\nThis is one file of the pull request:\n" +
        llm::truncate_to_tokens(section, allowed) +
        "\nIn one or two sentences, say what changed in this file and why it matters. Plain "
        "text, no heading.";
    try {
      return one_line(session.ask(prompt, options.file_reply_tokens, std::nullopt, {}).content);
    } catch (const llm::ContextTooLongError&) {
      session.progress("  too long for the model; shrinking the patch");
    }
  }
  return std::nullopt;
}

const github::ChangedFile* find_changed_file(const github::PullRequest& pr, std::string_view path) {
  const auto it = std::find_if(pr.files.begin(), pr.files.end(),
                               [&](const github::ChangedFile& f) { return f.filename == path; });
  return it == pr.files.end() ? nullptr : &*it;
}

}  // namespace

std::string file_section(const github::PullRequest& pr, const github::ChangedFile& file) {
  std::string text = "### " + file.filename;
  if (!file.previous_filename.empty()) {
    text += " (renamed from " + file.previous_filename + ")";
  }
  text += " [" + file.status + ", +" + std::to_string(file.additions) + " -" +
          std::to_string(file.deletions) + "]\n";
  if (const auto* diff = pr.find_file_diff(file.filename);
      diff != nullptr && !diff->hunks.empty()) {
    text += diff->to_patch();
  } else if (file.patch && !file.patch->empty()) {
    text += *file.patch;
  } else {
    text += "(no textual diff: binary or too large)";
  }
  if (text.back() != '\n') {
    text += '\n';
  }
  return text;
}

Summary summarise(const github::PullRequest& pr, llm::ChatClient& client,
                  const SummariseOptions& options) {
  Summary summary;
  summary.repo = pr.repo.full_name();
  summary.number = pr.meta.number;
  summary.title = pr.meta.title;
  summary.url = pr.meta.html_url;
  Session session{client, options, summary};

  std::string out;  // the Markdown document, also passed to on_text piece by piece
  const auto emit = [&](std::string_view text) {
    out += text;
    if (options.on_text && !options.json) {
      options.on_text(text);
    }
  };
  // The title block goes out just before the first text the model streams, after the progress
  // lines, so that a terminal shows progress first and then one uninterrupted document.
  bool header_sent = false;
  const auto emit_header = [&] {
    if (!std::exchange(header_sent, true)) {
      emit("# " + pr.meta.title + "\n\n");
      emit(summary.repo + "#" + std::to_string(summary.number) +
           (summary.url.empty() ? "" : " · " + summary.url) + "\n\n");
    }
  };
  const llm::TokenCallback stream_tokens =
      options.stream && !options.json ? llm::TokenCallback{emit} : llm::TokenCallback{};

  const std::string header = pr_header(pr, options.context_tokens / 8);
  std::vector<std::string> sections;
  std::vector<std::int64_t> section_tokens;
  for (const auto& file : pr.files) {
    sections.push_back(file_section(pr, file));
    section_tokens.push_back(llm::estimate_tokens(sections.back()));
  }
  const auto fixed_tokens = llm::estimate_tokens(kSystemPrompt) + llm::estimate_tokens(header) +
                            llm::estimate_tokens(kMarkdownTemplate) +
                            llm::estimate_tokens(kFilesTemplate);
  const auto single_budget =
      llm::input_budget(options.context_tokens, options.reply_tokens, fixed_tokens);
  const auto total_tokens =
      std::accumulate(section_tokens.begin(), section_tokens.end(), std::int64_t{0});

  if (total_tokens <= single_budget) {
    std::string diff_text;
    for (const auto& section : sections) {
      diff_text += section;
    }
    const std::string prompt = header + "\nThe changes, file by file:\n" + diff_text + "\n";
    session.progress("summarising " + std::to_string(pr.files.size()) + " files in one call");
    emit_header();
    try {
      if (options.json) {
        const auto result = session.ask(
            prompt +
                "Summarise the pull request as JSON: what changed, why, the risk areas, and "
                "one line per file.",
            options.reply_tokens, full_schema(), {});
        const auto fields = parse_model_json(result.content);
        read_overview(fields, summary);
        if (const auto files = fields.find("files"); files != fields.end() && files->is_array()) {
          for (const auto& file : *files) {
            const auto path = string_field(file, "path");
            const auto* changed = find_changed_file(pr, path);
            summary.files.push_back(
                {path, changed ? changed->status : "", string_field(file, "summary")});
          }
        }
        out += render_fields_markdown(summary);
      } else {
        auto result =
            session.ask(prompt + std::string{kMarkdownTemplate} + std::string{kFilesTemplate},
                        options.reply_tokens, std::nullopt, stream_tokens);
        if (!stream_tokens) {
          emit(result.content);
        }
        if (!result.content.empty() && result.content.back() != '\n') {
          emit("\n");
        }
      }
      summary.markdown = std::move(out);
      return summary;
    } catch (const llm::ContextTooLongError&) {
      // Our estimate was not conservative enough for this tokenizer: go file by file.
      session.progress("the model says the diff is too long; summarising file by file");
      if (!options.json && stream_tokens) {
        emit("\n\n_(restarting file by file: the diff was too long for one call)_\n\n");
      }
    }
  }

  // Map: the largest changes first, as many files as we allow; the rest are named as left out.
  summary.map_reduce = true;
  std::vector<std::size_t> order(pr.files.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return pr.files[a].additions + pr.files[a].deletions >
           pr.files[b].additions + pr.files[b].deletions;
  });
  std::vector<bool> selected(pr.files.size(), false);
  for (std::size_t i = 0; i < order.size() && i < options.max_map_files; ++i) {
    selected[order[i]] = true;
  }
  const std::string short_header = pr_header(pr, options.context_tokens / 16);
  const auto file_budget = llm::input_budget(
      options.context_tokens, options.file_reply_tokens,
      llm::estimate_tokens(kSystemPrompt) + llm::estimate_tokens(short_header) + 64);
  const auto total_selected = std::count(selected.begin(), selected.end(), true);
  session.progress("the diff (~" + std::to_string(total_tokens) + " tokens) exceeds the budget (" +
                   std::to_string(single_budget) + "); summarising " +
                   std::to_string(total_selected) + " files one by one");
  int done = 0;
  for (std::size_t i = 0; i < pr.files.size(); ++i) {
    const auto& file = pr.files[i];
    if (!selected[i]) {
      summary.left_out.push_back(file.filename);
      continue;
    }
    session.progress(fmt::format("[{}/{}] {}", ++done, total_selected, file.filename));
    if (auto line = summarise_file(session, short_header, sections[i], file_budget, options)) {
      summary.files.push_back({file.filename, file.status, std::move(*line)});
    } else {
      summary.left_out.push_back(file.filename);
    }
  }

  // Reduce: the per-file lines that fit, in order, into one overview.
  std::vector<std::string> lines;
  std::vector<std::int64_t> line_tokens;
  for (const auto& file : summary.files) {
    lines.push_back("- " + file.path + " (" + file.status + "): " + file.summary + "\n");
    line_tokens.push_back(llm::estimate_tokens(lines.back()));
  }
  auto reduce_budget =
      llm::input_budget(options.context_tokens, options.reply_tokens,
                        llm::estimate_tokens(kSystemPrompt) + llm::estimate_tokens(header) +
                            llm::estimate_tokens(kMarkdownTemplate));
  session.progress("combining " + std::to_string(lines.size()) + " file summaries");
  emit_header();
  for (int attempt = 0;; ++attempt, reduce_budget /= 2) {
    const auto fit = llm::fit_to_budget(line_tokens, reduce_budget);
    std::string listing;
    for (const auto index : fit.included) {
      listing += lines[index];
    }
    if (!fit.left_out.empty()) {
      session.progress(std::to_string(fit.left_out.size()) +
                       " file summaries did not fit the final prompt");
    }
    const std::string prompt =
        header + "\nEach changed file, summarised:\n" + listing +
        "\nFrom these, summarise the whole pull request. Do not list the files again.\n";
    try {
      if (options.json) {
        const auto result =
            session.ask(prompt + "Answer as JSON: what changed, why, and the risk areas.",
                        options.reply_tokens, overview_schema(), {});
        read_overview(parse_model_json(result.content), summary);
        out += render_fields_markdown(summary);
      } else {
        auto result = session.ask(prompt + std::string{kMarkdownTemplate}, options.reply_tokens,
                                  std::nullopt, stream_tokens);
        if (!stream_tokens) {
          emit(result.content);
        }
        emit(result.content.ends_with('\n') ? "\n" : "\n\n");
        emit(files_markdown(summary.files));
      }
      break;
    } catch (const llm::ContextTooLongError&) {
      if (attempt == 2) {
        throw;
      }
      session.progress("the combined prompt is too long; using fewer file summaries");
    }
  }
  emit(left_out_markdown(summary, options.context_tokens));
  summary.markdown = std::move(out);
  return summary;
}

nlohmann::json to_json(const Summary& summary) {
  auto files = nlohmann::json::array();
  for (const auto& file : summary.files) {
    files.push_back({{"path", file.path}, {"status", file.status}, {"summary", file.summary}});
  }
  return {{"repo", summary.repo},
          {"number", summary.number},
          {"title", summary.title},
          {"url", summary.url},
          {"what_changed", summary.what_changed},
          {"why", summary.why},
          {"risk_areas", summary.risk_areas},
          {"files", std::move(files)},
          {"left_out", summary.left_out},
          {"map_reduce", summary.map_reduce},
          {"markdown", summary.markdown},
          {"usage",
           {{"llm_calls", summary.llm_calls},
            {"prompt_tokens", summary.prompt_tokens},
            {"completion_tokens", summary.completion_tokens}}}};
}

}  // namespace llmgw::pr
