#pragma once
// Where the in-process ledger's spend is persisted: the embedded SQLite file (store/). (With
// store.redis the ledger itself lives in Redis: guard/redis_ledger.hpp.) The ledger only ever
// talks to this interface.

#include <chrono>
#include <string>
#include <vector>

namespace michi::guard {

// Spend of one key in one calendar window: period is "d:YYYY-MM-DD" or "m:YYYY-MM" (UTC).
struct spend_row {
    std::string key_id;
    std::string period;
    double usd = 0;
};

class spend_store {
public:
    virtual ~spend_store() = default;
    // Every persisted row (called once at start, before traffic).
    virtual std::vector<spend_row> load() = 0;
    // Adds usd to (key_id, period). Cheap and non-blocking for the caller: buffered and
    // written in batches off the event loops every flush interval.
    virtual void add(const std::string& key_id, const std::string& period, double usd) = 0;
    // Adds usd to both windows of one charge, (key_id, day) and (key_id, month).
    virtual void add(const std::string& key_id, const std::string& day, const std::string& month,
                     double usd) {
        add(key_id, day, usd);
        add(key_id, month, usd);
    }
    // Writes everything buffered so far before returning (clean stop).
    virtual void flush() = 0;
};

} // namespace michi::guard
