#pragma once

// Files a review or a summary should not read: lock files, vendored and generated code, minified
// assets. On a large pull request they crowd out the code a reviewer cares about (in one real
// 406 case, vendored files were 81 of 141).
//
// Globs follow .gitignore's rules where they matter here: `*` and `?` stay within one path
// segment, `**` spans any number of segments (`**/vendor/**`, `docs/**`), and a glob without a
// `/` matches the file name at any depth (`*.min.js` matches `web/app.min.js`).
//
// Pure functions; thread-compatible.

#include <string>
#include <string_view>
#include <vector>

#include "llmgw/github/client.hpp"

namespace llmgw::review {

// The globs applied unless turned off: lock files, vendored and generated code, minified assets.
const std::vector<std::string>& default_ignore_globs();

// True when `path` matches `glob` (see the rules above).
bool glob_matches(std::string_view glob, std::string_view path);

// Removes every file matching one of `globs` from pr.files and pr.file_diffs; returns their
// paths, in the PR's order.
std::vector<std::string> drop_ignored_files(github::PullRequest& pr,
                                            const std::vector<std::string>& globs);

// Keeps only the files named in `paths` (an incremental review: the files changed since the last
// reviewed commit); returns how many were dropped.
std::size_t keep_only_files(github::PullRequest& pr, const std::vector<std::string>& paths);

// "_3 file(s) not reviewed (ignored: lock files, vendored or generated code): `a`, `b`, `c`._",
// the list cut after `max_listed` names; empty for none.
std::string ignored_note(const std::vector<std::string>& ignored, std::size_t max_listed = 20);

}  // namespace llmgw::review
