#include "fakes/sample_pr.hpp"

namespace llmgw::fakes {
namespace {

constexpr std::string_view kCachePatch =
    "@@ -14,6 +14,6 @@ int Cache::get(int key) {\n"
    " }\n"
    " \n"
    " void Cache::put(int key, int value) {\n"
    "-  std::lock_guard lock(mutex_);\n"
    "   entries_[key] = value;\n"
    "+  size_ = entries_.size();\n"
    " }\n";

constexpr std::string_view kHeaderPatch =
    "@@ -0,0 +1,4 @@\n"
    "+#pragma once\n"
    "+#include <map>\n"
    "+#include <mutex>\n"
    "+namespace acme { class Cache; }\n";

constexpr std::string_view kDocsPatch =
    "@@ -1,2 +0,0 @@\n"
    "-# Old\n"
    "-text\n";

}  // namespace

std::string sample_diff() {
  return "diff --git a/src/cache.cpp b/src/cache.cpp\n"
         "index 2222222..3333333 100644\n"
         "--- a/src/cache.cpp\n"
         "+++ b/src/cache.cpp\n" +
         std::string{kCachePatch} +
         "diff --git a/src/cache.hpp b/src/cache.hpp\n"
         "new file mode 100644\n"
         "index 0000000..4444444\n"
         "--- /dev/null\n"
         "+++ b/src/cache.hpp\n" +
         std::string{kHeaderPatch} +
         "diff --git a/docs/old.md b/docs/old.md\n"
         "deleted file mode 100644\n"
         "index 5555555..0000000\n"
         "--- a/docs/old.md\n"
         "+++ /dev/null\n" +
         std::string{kDocsPatch};
}

github::PullRequest sample_pull_request() {
  github::PullRequest pr;
  pr.repo = {"acme", "widgets"};
  pr.meta.number = 42;
  pr.meta.title = "Cache: track the size";
  pr.meta.body = "Keeps a size counter next to the entries.";
  pr.meta.author = "octocat";
  pr.meta.state = "open";
  pr.meta.head_sha = std::string{kSampleHeadSha};
  pr.meta.base_sha = std::string{kSampleBaseSha};
  pr.meta.head_ref = "size";
  pr.meta.base_ref = "main";
  pr.files = {
      {"src/cache.cpp", "", "modified", 1, 1, std::string{kCachePatch}},
      {"src/cache.hpp", "", "added", 4, 0, std::string{kHeaderPatch}},
      {"docs/old.md", "", "removed", 0, 2, std::string{kDocsPatch}},
  };
  pr.diff = sample_diff();
  pr.file_diffs = github::parse_unified_diff(pr.diff);
  return pr;
}

std::map<std::string, std::string> sample_head_files() {
  return {
      {"src/cache.cpp",
       "#include \"cache.hpp\"\n"
       "\n"
       "#include <mutex>\n"
       "\n"
       "namespace acme {\n"
       "\n"
       "int Cache::get(int key) {\n"
       "  std::lock_guard lock(mutex_);\n"
       "  auto it = entries_.find(key);\n"
       "  if (it == entries_.end()) {\n"
       "    return -1;\n"
       "  }\n"
       "  return it->second;\n"
       "}\n"
       "\n"
       "void Cache::put(int key, int value) {\n"
       "  entries_[key] = value;\n"
       "  size_ = entries_.size();\n"
       "}\n"
       "\n"
       "}  // namespace acme\n"},
      {"src/cache.hpp",
       "#pragma once\n#include <map>\n#include <mutex>\nnamespace acme { class Cache; }\n"},
  };
}

namespace {

constexpr std::string_view kHeaderPatchSecondPush =
    "@@ -0,0 +1,5 @@\n"
    "+#pragma once\n"
    "+#include <map>\n"
    "+#include <mutex>\n"
    "+namespace acme { class Cache; }\n"
    "+namespace acme { int cache_capacity(); }\n";

}  // namespace

github::PullRequest sample_pull_request_second_push() {
  auto pr = sample_pull_request();
  pr.meta.head_sha = std::string{kSampleSecondHeadSha};
  pr.files[1].patch = std::string{kHeaderPatchSecondPush};
  pr.files[1].additions = 5;
  const auto at = pr.diff.find(kHeaderPatch);
  pr.diff.replace(at, kHeaderPatch.size(), kHeaderPatchSecondPush);
  pr.file_diffs = github::parse_unified_diff(pr.diff);
  return pr;
}

std::map<std::string, std::string> sample_head_files_second_push() {
  auto files = sample_head_files();
  files["src/cache.hpp"] += "namespace acme { int cache_capacity(); }\n";
  return files;
}

}  // namespace llmgw::fakes
