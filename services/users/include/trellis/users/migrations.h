// SQL migrations of the users database, embedded from services/users/migrations/ at build time.
#pragma once

#include <vector>

#include "trellis/common/migrator.h"

namespace trellis::users {
const std::vector<db::Migration>& migrations();
}
