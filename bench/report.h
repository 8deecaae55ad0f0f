// What every benchmark program shares: the median of its samples and the one-line JSON figure
// that bench/run documents.
#ifndef RUNVM_BENCH_REPORT_H_
#define RUNVM_BENCH_REPORT_H_

#include <algorithm>
#include <cstdio>
#include <vector>

namespace runvm::bench {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// {"bench","figure","runvm_ms","floor_ms","ratio","runs"} on one line.
inline void Emit(const char* bench, const char* figure, double runvm_ms, double floor_ms,
                 int runs) {
  std::printf(
      "{\"bench\": \"%s\", \"figure\": \"%s\", \"runvm_ms\": %.4f, \"floor_ms\": %.4f, "
      "\"ratio\": %.3f, \"runs\": %d}\n",
      bench, figure, runvm_ms, floor_ms, floor_ms > 0 ? runvm_ms / floor_ms : 0.0, runs);
  std::fflush(stdout);
}

}  // namespace runvm::bench

#endif  // RUNVM_BENCH_REPORT_H_
