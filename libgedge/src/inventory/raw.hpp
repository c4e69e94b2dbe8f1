// The inventory's raw statement API (Inventory's private query and exec), for the unit tests'
// fixtures only: they set up rows no store writes. Library code calls a store (gedge/stores.hpp);
// tests/unit/test_inventory.cpp fails if a file outside libgedge/src/inventory/ names this.
#pragma once

#include <string_view>
#include <vector>

#include "gedge/inventory.hpp"

namespace gedge {

struct InventoryRaw {
  static Result<std::vector<SqlRow>> query(Inventory& inv, std::string_view sql,
                                           const std::vector<SqlValue>& params = {}) {
    return inv.query(sql, params);
  }
  static Result<int64_t> exec(Inventory& inv, std::string_view sql,
                              const std::vector<SqlValue>& params = {}) {
    return inv.exec(sql, params);
  }
};

}  // namespace gedge
