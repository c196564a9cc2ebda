// StoreLease: the lock of a store where no flock(2) reaches (an object store shared by machines):
// the lease object `.zarr-parallel/lease.json` {holder, host, pid, expires}, created with
// put-if-absent, so of two coordinators one creates it and the other is refused (Error(Store)
// naming the holder and when its lease expires). The holder renews it (a later expiry) from its
// heartbeat with put-if-match on the version it last wrote; a holder that died leaves a lease that
// expires, and is then taken over by replacing that expired version with put-if-match (If-Match on
// its ETag), so of two takers one wins and the other is refused. What it cannot promise: on a
// server that ignores If-None-Match and If-Match both succeed (S3Writer::conditional_puts_honoured
// says so beforehand), and a holder stalled past its expiry (paused, partitioned) may find its
// lease taken: renew() then fails and it must stop.
#pragma once

#include <memory>
#include <string>

#include "store/writable.hpp"

namespace zp {

class StoreLease {
 public:
  static constexpr double kSeconds = 60;  // a lease's life: renewed every few seconds
  // Takes the lease on `store` or throws Error(Store). `now`: seconds since the epoch (tests).
  static std::unique_ptr<StoreLease> acquire(const Writable& store, double seconds = kSeconds,
                                             double now = -1);
  ~StoreLease();  // deletes the lease when it is still ours
  StoreLease(const StoreLease&) = delete;
  StoreLease& operator=(const StoreLease&) = delete;

  // Extends the lease to now + seconds; Error(Store) when it is no longer ours (it expired and
  // another run took it over): this run must stop writing.
  void renew(double now = -1);
  // Error(Store) when the lease is no longer ours (nothing written).
  void verify() const;
  double seconds() const { return seconds_; }
  // The lease's life: ZP_S3_LEASE_SECONDS (tests: a short lease) or kSeconds.
  static double configured_seconds();
  const std::string& holder() const { return holder_; }

 private:
  StoreLease(const Writable& store, std::string holder, double seconds, std::string tag)
      : store_(store), holder_(std::move(holder)), seconds_(seconds), tag_(std::move(tag)) {}
  const Writable& store_;
  std::string holder_;
  double seconds_;
  std::string tag_;  // the version of the lease object this run wrote last
};

}  // namespace zp
