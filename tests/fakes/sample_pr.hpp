#pragma once

// A small, self-consistent pull request for the review tests: acme/widgets#42, head sha
// kSampleHeadSha. Its diff, its per-file patches and its files at head agree line for line.
//
//   src/cache.cpp  modified: put() lost its lock. Commentable RIGHT 14-19, LEFT 17.
//   src/cache.hpp  added, 4 lines. Commentable RIGHT 1-4.
//   docs/old.md    removed, 2 lines. Commentable LEFT 1-2.

#include <map>
#include <string>

#include "llmgw/github/client.hpp"

namespace llmgw::fakes {

inline constexpr std::string_view kSampleHeadSha = "1111111111111111111111111111111111111111";
inline constexpr std::string_view kSampleBaseSha = "0000000000000000000000000000000000000000";

// The unified diff as GitHub serves it with Accept: application/vnd.github.diff.
std::string sample_diff();
// The pull request as github::Client::fetch_pull_request would return it.
github::PullRequest sample_pull_request();
// The files at the head commit, by path (docs/old.md is absent: it was removed).
std::map<std::string, std::string> sample_head_files();

inline constexpr std::string_view kSampleSecondHeadSha = "2222222222222222222222222222222222222222";
// The same pull request after one more commit (head kSampleSecondHeadSha) that changes only
// src/cache.hpp (a fifth line); src/cache.cpp and docs/old.md are as before.
github::PullRequest sample_pull_request_second_push();
std::map<std::string, std::string> sample_head_files_second_push();

}  // namespace llmgw::fakes
