// The config key table (config/config_keys.hpp) against the README's key table: the same keys,
// and for a row of one key the same default. The README is written by hand; this keeps the two
// from drifting apart.
#include "config/config_keys.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace zp {
namespace {

// The rows of the README's "## Configuration" table: the keys of a row (`a` / `b` + `c`) and
// its default column.
std::vector<std::pair<std::vector<std::string>, std::string>> readme_key_rows() {
  std::ifstream in(ZP_SOURCE_DIR "/README.md");
  std::vector<std::pair<std::vector<std::string>, std::string>> rows;
  bool in_table = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "| key | default | meaning |") in_table = true;
    if (!in_table || line.rfind("| `", 0) != 0) {
      if (in_table && line.empty()) break;
      continue;
    }
    const auto first = line.find(" | ", 2);
    const auto second = line.find(" | ", first + 3);
    const std::string keys = line.substr(2, first - 2);
    std::vector<std::string> names;
    const std::regex quoted("`([a-z_]+)`");
    for (std::sregex_iterator m(keys.begin(), keys.end(), quoted), end; m != end; ++m)
      names.push_back((*m)[1]);
    rows.emplace_back(names, line.substr(first + 3, second - first - 3));
  }
  return rows;
}

TEST(ConfigKeys, MatchTheReadmeTable) {
  const auto rows = readme_key_rows();
  ASSERT_GT(rows.size(), 20u);
  std::map<std::string, const ConfigKey*> table;
  for (const auto& k : config_keys()) table[k.name] = &k;
  std::set<std::string> in_readme;
  for (const auto& [names, default_text] : rows) {
    for (const auto& n : names) {
      in_readme.insert(n);
      EXPECT_TRUE(table.count(n)) << n << " is in the README but not in the key table";
    }
    if (names.size() == 1 && table.count(names[0])) {
      EXPECT_EQ(default_text.rfind(table[names[0]]->default_text, 0), 0u)
          << names[0] << ": README says " << default_text;
    }
  }
  for (const auto& [name, k] : table)
    EXPECT_TRUE(in_readme.count(name)) << name << " is in the key table but not in the README";
}

TEST(ConfigKeys, ChoicesAndRangesDriveTheMessages) {
  for (const auto& k : config_keys()) {
    if (k.type == KeyType::Choice) {
      EXPECT_FALSE(k.choices.empty()) << k.name;
      EXPECT_NE(key_type_text(k).find(k.choices.front()), std::string::npos) << k.name;
    }
    if (k.type == KeyType::Count || k.type == KeyType::CountOrAuto) {
      EXPECT_GT(k.max, 0) << k.name;
    }
  }
  const std::string md = config_keys_markdown();
  EXPECT_NE(md.find("| `deploy_mode` | one of: series, local, slurm, mpi, dask_distributed |"),
            std::string::npos);
}

}  // namespace
}  // namespace zp
