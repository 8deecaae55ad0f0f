// gtest matchers for absl::Status and absl::StatusOr (Debian's abseil has none):
//
//   EXPECT_THAT(Load(path), IsOk());
//   EXPECT_THAT(Load(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
//   ASSERT_OK_AND_ASSIGN(Config c, Load(path));
#ifndef RUNVM_TESTS_TESTING_STATUS_MATCHERS_H_
#define RUNVM_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace absl {
// Lets gtest print a StatusOr in failure messages.
template <typename T>
void PrintTo(const StatusOr<T>& s, std::ostream* os) {
  if (s.ok()) {
    *os << "OK with a value";
  } else {
    *os << s.status();
  }
}
}  // namespace absl

namespace runvm::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, negation ? "is not OK" : "is OK") {
  const absl::Status& st = GetStatus(arg);
  if (!st.ok()) *result_listener << "status: " << st;
  return st.ok();
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + std::string(absl::StatusCodeToString(code)) + " and a matching message") {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status: " << st;
  return st.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(st.message()), result_listener);
}

MATCHER_P(StatusIs, code, "has code " + std::string(absl::StatusCodeToString(code))) {
  const absl::Status& st = GetStatus(arg);
  *result_listener << "status: " << st;
  return st.code() == code;
}

}  // namespace runvm::testing

#define RUNVM_TEST_CONCAT_INNER_(a, b) a##b
#define RUNVM_TEST_CONCAT_(a, b) RUNVM_TEST_CONCAT_INNER_(a, b)
#define RUNVM_ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                     \
  ASSERT_TRUE(tmp.ok()) << "status: " << tmp.status();    \
  lhs = std::move(tmp).value()
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  RUNVM_ASSERT_OK_AND_ASSIGN_IMPL_(RUNVM_TEST_CONCAT_(runvm_test_so_, __LINE__), lhs, rexpr)

#endif  // RUNVM_TESTS_TESTING_STATUS_MATCHERS_H_
