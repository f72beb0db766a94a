#include "util.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace pl {

namespace {
std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; i++) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}
}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view msg) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
       out, &len);
  return hex(out, len);
}

std::string md5_hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return hex(out, len);
}

std::string json_escape(std::string_view s) {
  std::string o;
  o.reserve(s.size() + 8);
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o;
}

int Histogram::index(uint64_t v) {
  if (v < 64) return int(v);
  int k = 63 - __builtin_clzll(v);  // >= 6
  uint64_t m = v >> (k - 6);        // [64, 128)
  int i = 64 + (k - 6) * 64 + int(m - 64);
  return i < kBuckets ? i : kBuckets - 1;
}

int64_t Histogram::value_of(int i) {
  if (i < 64) return i;
  int k = (i - 64) / 64 + 6;
  int64_t m = 64 + (i - 64) % 64;
  int64_t lo = m << (k - 6), width = int64_t(1) << (k - 6);
  return lo + width / 2;
}

void Histogram::record(int64_t us) {
  if (us < 0) us = 0;
  buckets_[index(uint64_t(us))]++;
  n_++;
  if (us > max_) max_ = us;
}

void Histogram::merge(const Histogram& o) {
  for (int i = 0; i < kBuckets; i++) buckets_[i] += o.buckets_[i];
  n_ += o.n_;
  if (o.max_ > max_) max_ = o.max_;
}

int64_t Histogram::percentile(double p) const {
  if (!n_) return 0;
  uint64_t want = uint64_t(p / 100.0 * double(n_));
  if (want >= n_) want = n_ - 1;
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; i++) {
    seen += buckets_[i];
    if (seen > want) {
      int64_t v = value_of(i);
      return v > max_ ? max_ : v;
    }
  }
  return max_;
}

namespace {
// Returns utime + stime (clock ticks) and the parent pid of /proc/PID/stat.
bool read_stat(int pid, long long* ticks, int* ppid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return false;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char* p = strrchr(buf, ')');  // the command may hold spaces
  if (!p) return false;
  // After ")": state(3) ppid(4) ... utime(14) stime(15)
  std::istringstream in(p + 2);
  std::string field;
  long long ut = 0, st = 0;
  for (int i = 3; i <= 15 && in >> field; i++) {
    if (i == 4) *ppid = atoi(field.c_str());
    if (i == 14) ut = atoll(field.c_str());
    if (i == 15) st = atoll(field.c_str());
  }
  *ticks = ut + st;
  return true;
}
}  // namespace

double tree_cpu_seconds(const std::vector<int>& roots) {
  std::map<int, std::vector<int>> children;
  std::map<int, long long> ticks;
  DIR* d = opendir("/proc");
  if (!d) return 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int pid = atoi(e->d_name), ppid = 0;
    long long t = 0;
    if (!read_stat(pid, &t, &ppid)) continue;
    children[ppid].push_back(pid);
    ticks[pid] = t;
  }
  closedir(d);
  long long sum = 0;
  std::vector<int> todo(roots.begin(), roots.end());
  std::map<int, bool> done;
  while (!todo.empty()) {
    int p = todo.back();
    todo.pop_back();
    if (p <= 0 || done[p]) continue;
    done[p] = true;
    sum += ticks[p];
    for (int c : children[p]) todo.push_back(c);
  }
  return double(sum) / double(sysconf(_SC_CLK_TCK));
}

double machine_busy_seconds() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  long long v[10] = {0};
  f >> cpu;
  for (auto& x : v) f >> x;
  long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
  return double(busy) / double(sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

}  // namespace pl
