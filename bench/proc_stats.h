// Server-side resource figures from /proc: CPU time (utime+stime) and
// memory (VmRSS, and PSS, which splits shared pages between the processes
// that map them, so summing it over Apache's children does not count the
// shared module text once per child) of a set of processes. A set is given
// as root pids; each root's descendants are included, re-read at every
// snapshot because Apache and nginx start and stop children at will.
#pragma once
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lg {

struct ProcSample {
  double cpu_sec = 0;  // utime + stime
  long rss_kib = 0;
  long pss_kib = 0;
  long threads = 0;
};

struct ServerSnapshot {
  std::map<int, ProcSample> procs;
  double cpu_sec() const {
    double s = 0;
    for (const auto& p : procs) s += p.second.cpu_sec;
    return s;
  }
  long rss_kib() const {
    long s = 0;
    for (const auto& p : procs) s += p.second.rss_kib;
    return s;
  }
  long pss_kib() const {
    long s = 0;
    for (const auto& p : procs) s += p.second.pss_kib;
    return s;
  }
  long threads() const {
    long s = 0;
    for (const auto& p : procs) s += p.second.threads;
    return s;
  }
};

// CPU consumed between two snapshots; a process that appeared in between
// counts from zero, one that exited is lost (its time went to its parent's
// cutime, which is not read).
inline double cpu_between(const ServerSnapshot& a, const ServerSnapshot& b) {
  double s = 0;
  for (const auto& p : b.procs) {
    auto it = a.procs.find(p.first);
    s += p.second.cpu_sec - (it == a.procs.end() ? 0 : it->second.cpu_sec);
  }
  return s;
}

namespace detail {

inline bool read_file(const std::string& path, std::string* out) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[8192];
  size_t n;
  out->clear();
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  std::fclose(f);
  return true;
}

// Fields after the ")" that ends comm in /proc/PID/stat, 0-based from
// field 3 (state).
inline bool stat_fields(int pid, std::vector<std::string>* f) {
  std::string s;
  if (!read_file("/proc/" + std::to_string(pid) + "/stat", &s)) return false;
  size_t p = s.rfind(')');
  if (p == std::string::npos) return false;
  f->clear();
  size_t i = p + 2;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    f->push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return f->size() > 20;
}

inline long status_kib(const std::string& text, const char* key) {
  size_t p = text.find(key);
  if (p == std::string::npos) return 0;
  return std::atol(text.c_str() + p + std::strlen(key));
}

}  // namespace detail

inline std::vector<int> all_pids() {
  std::vector<int> pids;
  DIR* d = opendir("/proc");
  if (!d) return pids;
  while (dirent* e = readdir(d)) {
    char* end;
    long v = std::strtol(e->d_name, &end, 10);
    if (*end == 0 && v > 0) pids.push_back(static_cast<int>(v));
  }
  closedir(d);
  return pids;
}

// roots and all their descendants that are alive now.
inline std::set<int> expand_pids(const std::vector<int>& roots) {
  std::map<int, std::vector<int>> children;
  std::vector<std::string> f;
  for (int pid : all_pids()) {
    if (detail::stat_fields(pid, &f)) children[std::atoi(f[1].c_str())].push_back(pid);
  }
  std::set<int> out;
  std::vector<int> todo;
  for (int r : roots) {
    if (kill(r, 0) == 0 || errno == EPERM) todo.push_back(r);
  }
  while (!todo.empty()) {
    int p = todo.back();
    todo.pop_back();
    if (!out.insert(p).second) continue;
    for (int c : children[p]) todo.push_back(c);
  }
  return out;
}

inline ServerSnapshot snapshot(const std::vector<int>& roots, bool with_pss) {
  ServerSnapshot snap;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  std::vector<std::string> f;
  std::string text;
  for (int pid : expand_pids(roots)) {
    ProcSample s;
    if (!detail::stat_fields(pid, &f)) continue;
    // utime, stime are fields 14 and 15 (1-based), i.e. 11 and 12 here.
    s.cpu_sec = (std::atof(f[11].c_str()) + std::atof(f[12].c_str())) / ticks;
    s.threads = std::atol(f[17].c_str());
    std::string base = "/proc/" + std::to_string(pid);
    if (detail::read_file(base + "/status", &text)) s.rss_kib = detail::status_kib(text, "VmRSS:");
    if (with_pss && detail::read_file(base + "/smaps_rollup", &text))
      s.pss_kib = detail::status_kib(text, "\nPss:");
    snap.procs[pid] = s;
  }
  return snap;
}

// Pids from a pid file (the first number in it), 0 when unreadable.
inline int read_pid_file(const std::string& path) {
  std::string s;
  if (!detail::read_file(path, &s)) return 0;
  return std::atoi(s.c_str());
}

}  // namespace lg
