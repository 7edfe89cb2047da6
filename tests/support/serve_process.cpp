#include "support/serve_process.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/wait.hpp"

namespace llmgw::testing {

TempDir::TempDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  const std::string file = path_ + "/" + name;
  // Written aside and renamed: a reader never sees half a file.
  const std::string partial = file + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(partial, file);
  return file;
}

namespace {

std::vector<std::string> serve_args(const std::string& config_file,
                                    std::vector<std::string> extra_args) {
  std::vector<std::string> args{"serve", "--config", config_file};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return args;
}

}  // namespace

ServeProcess::ServeProcess(const std::string& config_file, std::vector<std::string> extra_args,
                           std::chrono::milliseconds timeout)
    : process_(LLMGW_BINARY, serve_args(config_file, std::move(extra_args))) {
  // Text or JSON, the line reads "llmgw listening on ADDRESS:PORT with ... routing ...".
  const std::string marker = "llmgw listening on 127.0.0.1:";
  const std::string output = process_.read_until(" routing ", timeout);
  const auto at = output.find(marker);
  if (at == std::string::npos) {
    ADD_FAILURE() << "llmgw serve did not start:\n" << output;
    return;
  }
  port_ = static_cast<std::uint16_t>(std::stoi(output.substr(at + marker.size())));
}

std::string ServeProcess::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string{path};
}

bool ServeProcess::wait_for_output(const std::string& needle, std::chrono::milliseconds timeout) {
  return process_.read_until(needle, timeout).find(needle) != std::string::npos;
}

}  // namespace llmgw::testing
