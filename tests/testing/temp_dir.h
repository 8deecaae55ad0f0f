// TempDir: a fresh directory under $TMPDIR (or /tmp) removed with its content on destruction.
#ifndef RUNVM_TESTS_TESTING_TEMP_DIR_H_
#define RUNVM_TESTS_TESTING_TEMP_DIR_H_

#include <string>

namespace runvm::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Writes `content` to path()/name (creating parent directories) and returns the full path.
  std::string Write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

}  // namespace runvm::testing

#endif  // RUNVM_TESTS_TESTING_TEMP_DIR_H_
