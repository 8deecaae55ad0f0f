#include "runtime/config/annotations.h"

#include <fnmatch.h>

#include <regex>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "proto/config_codec.h"
#include "proto/config_keys.h"

namespace runvm {
namespace {

using config::ConfigValue;
using config::KeyInfo;
using config::ValueKind;

std::string JsonList(const std::vector<std::string>& list) { return nlohmann::json(list).dump(); }

absl::StatusOr<ConfigValue> ParseValue(const KeyInfo& key, const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", config::KindName(key.kind), ", got \"", text, "\""));
  };
  switch (key.kind) {
    case ValueKind::kBool:
      if (text == "true" || text == "1" || text == "t" || text == "T" || text == "TRUE" ||
          text == "True") {
        return ConfigValue(true);
      }
      if (text == "false" || text == "0" || text == "f" || text == "F" || text == "FALSE" ||
          text == "False") {
        return ConfigValue(false);
      }
      return bad();
    case ValueKind::kInt: {
      int64_t n;
      if (text.empty() || text.front() == '+' || !absl::SimpleAtoi(text, &n)) return bad();
      return ConfigValue(n);
    }
    case ValueKind::kString:
      return ConfigValue(text);
    case ValueKind::kStringList:
      return config::ValueFromJsonText(key, text);
  }
  return bad();
}

// Absolute, no empty, "." or ".." component: what a glob check can be trusted on.
bool IsNormalAbsolute(const std::string& path) {
  if (path.empty() || path.front() != '/') return false;
  if (path.size() > 1 && path.back() == '/') return false;
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

bool MatchesAnyGlob(const std::vector<std::string>& globs, const std::string& path) {
  for (const std::string& g : globs) {
    if (::fnmatch(g.c_str(), path.c_str(), FNM_PATHNAME) == 0) return true;
  }
  return false;
}

// The first rule that fully matches `name`, or nullptr. Rules were checked at load time.
const std::string* MatchingRule(const std::vector<std::string>& rules, const std::string& name) {
  for (const std::string& rule : rules) {
    try {
      if (std::regex_match(name, std::regex(rule, std::regex::ECMAScript))) return &rule;
    } catch (const std::regex_error&) {
      // Refused at load; an invalid rule allows nothing.
    }
  }
  return nullptr;
}

absl::Status Apply(const std::string& annotation, const std::string& text, config::Config& c) {
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("annotation ", annotation, ": ", why));
  };
  if (!absl::StartsWith(annotation, kHypervisorAnnotationPrefix)) {
    return refuse("only io.katacontainers.config.hypervisor.* annotations are supported");
  }
  std::string name = annotation.substr(sizeof(kHypervisorAnnotationPrefix) - 1);
  const KeyInfo* key = config::FindKey("hypervisor.qemu", name);
  if (key == nullptr) return refuse(absl::StrCat("\"", name, "\" is not a hypervisor key"));
  if (!key->annotatable) {
    return refuse(absl::StrCat("\"", name, "\" guards what annotations may do and can only be ",
                               "set in configuration.toml"));
  }
  const std::vector<std::string>& rules = c.hypervisor.enable_annotations;
  if (MatchingRule(rules, name) == nullptr) {
    return refuse(absl::StrCat("refused: \"", name,
                               "\" matches no rule of hypervisor.qemu.enable_annotations ",
                               JsonList(rules)));
  }
  absl::StatusOr<ConfigValue> value = ParseValue(*key, text);
  if (!value.ok()) return refuse(value.status().message());
  if (std::string why = key->CheckValue(*value); !why.empty()) return refuse(why);
  if (!key->path_globs_key.empty()) {
    const KeyInfo* globs_key = config::FindKey("hypervisor.qemu", key->path_globs_key);
    auto globs = std::get<std::vector<std::string>>(globs_key->get(c));
    const std::string& path = std::get<std::string>(*value);
    if (!IsNormalAbsolute(path)) {
      return refuse(absl::StrCat("refused: path \"", path,
                                 "\" is not absolute and normalised (no \".\", \"..\" or \"//\")"));
    }
    if (!MatchesAnyGlob(globs, path)) {
      return refuse(absl::StrCat("refused: path \"", path, "\" matches no glob of hypervisor.qemu.",
                                 key->path_globs_key, " ", JsonList(globs)));
    }
  }
  key->set(c, *value);
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckAnnotationRules(const std::vector<std::string>& rules) {
  for (size_t i = 0; i < rules.size(); ++i) {
    try {
      std::regex re(rules[i], std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rule ", i, " \"", rules[i], "\" is not a valid regular expression: ", e.what()));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyAnnotations(const std::map<std::string, std::string>& annotations,
                              const config::HostFacts& host, config::Config& config) {
  config::Config updated = config;
  for (const auto& [name, value] : annotations) {
    if (!absl::StartsWith(name, kKataAnnotationPrefix)) continue;
    if (absl::Status st = Apply(name, value, updated); !st.ok()) return st;
  }
  std::vector<std::string> errors;
  for (const config::Issue& issue : updated.Validate()) {
    errors.push_back(absl::StrCat(issue.key, ": ", issue.message));
  }
  if (!errors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("annotations make the configuration invalid: ", absl::StrJoin(errors, "; ")));
  }
  updated.ApplyClamps(host);
  config = std::move(updated);
  return absl::OkStatus();
}

}  // namespace runvm
