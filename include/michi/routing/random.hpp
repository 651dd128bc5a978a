#pragma once
// The random numbers routing draws (a weighted pick, a shuffle of ties, an exploration,
// backoff jitter): a worker's own generator. L'Ecuyer's taus88, as Boost.Random has it: good
// enough for spreading load, three words of state and a few shifts a number, where a Mersenne
// twister costs a 2.5 KB state and a regeneration every 624 numbers.

#include <boost/random/taus88.hpp>

namespace michi::routing {

using random_engine = boost::random::taus88;

} // namespace michi::routing
