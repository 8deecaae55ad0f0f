#include "base/status.h"

#include <cerrno>

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace runvm {
namespace {

using ::runvm::testing::IsOk;
using ::runvm::testing::StatusIs;
using ::testing::HasSubstr;

absl::Status FailIf(bool fail) {
  return fail ? absl::InvalidArgumentError("bad") : absl::OkStatus();
}

absl::Status Chain(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<int> Value(bool fail) {
  if (fail) return absl::NotFoundError("no value");
  return 7;
}

absl::StatusOr<int> Double(bool fail) {
  ASSIGN_OR_RETURN(int v, Value(fail));
  return v * 2;
}

TEST(StatusMacros, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_THAT(Chain(true, &reached), StatusIs(absl::StatusCode::kInvalidArgument, "bad"));
  EXPECT_EQ(reached, 0);
  EXPECT_THAT(Chain(false, &reached), IsOk());
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacros, AssignOrReturnPropagatesOrAssigns) {
  EXPECT_THAT(Double(true), StatusIs(absl::StatusCode::kNotFound, "no value"));
  absl::StatusOr<int> ok = Double(false);
  ASSERT_THAT(ok, IsOk());
  EXPECT_EQ(*ok, 14);
}

TEST(ErrnoError, NamesTheOperationAndTheCause) {
  EXPECT_THAT(ErrnoError(ENOENT, "open /x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("open /x: No such file")));
  EXPECT_THAT(ErrnoError(EACCES, "open /y"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("open /y")));
}

TEST(Annotate, PrefixesContextAndKeepsTheCode) {
  EXPECT_THAT(Annotate(absl::NotFoundError("gone"), "sandbox abc"),
              StatusIs(absl::StatusCode::kNotFound, "sandbox abc: gone"));
  EXPECT_THAT(Annotate(absl::OkStatus(), "ctx"), IsOk());
}

}  // namespace
}  // namespace runvm
