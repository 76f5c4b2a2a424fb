//! A small, bounded cache of token validation outcomes.
//!
//! Stands in for keystonemiddleware's token cache (`token_cache_time`), which upstream
//! `ironic_inspector/utils.py` (`add_auth_middleware`) relied on. Entries are keyed by a
//! keyed 128-bit hash of the token, never by the token itself, so a heap dump or a `Debug`
//! print of the cache reveals no credential. This module decides nothing about HTTP or
//! Keystone: it only remembers what [`super::keystone`] learnt, and for how long.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What Keystone said about a token, as far as authorisation is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Valid; `admin` tells whether its roles include exactly `admin`.
    Valid {
        /// The token carries the `admin` role.
        admin: bool,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// Cache key: a keyed hash of the token.
///
/// Two SipHash instances with independent random per-process keys give 128 bits. The keys
/// never leave the process, so nobody can compute offline a token that collides with a cached
/// admin token; a collision by chance is negligible at 128 bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey(u64, u64);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Even a hash is a handle on a live credential; keep it out of logs.
        f.write_str("TokenKey(..)")
    }
}

struct Entry {
    verdict: Verdict,
    expires: Instant,
}

/// Bounded map from [`TokenKey`] to [`Verdict`] with a per-entry deadline.
///
/// Guarded by a std `Mutex`: every critical section is a few map operations with no
/// `.await`, so concurrent validations never queue behind a network call here.
pub(crate) struct TokenCache {
    hashers: (RandomState, RandomState),
    entries: Mutex<HashMap<TokenKey, Entry>>,
    capacity: usize,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.entries.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("TokenCache")
            .field("entries", &len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl TokenCache {
    /// A cache that holds at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        TokenCache {
            hashers: (Default::default(), Default::default()),
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The key under which `token` is cached.
    pub(crate) fn key(&self, token: &str) -> TokenKey {
        let mut a = self.hashers.0.build_hasher();
        a.write(token.as_bytes());
        let mut b = self.hashers.1.build_hasher();
        b.write(token.as_bytes());
        TokenKey(a.finish(), b.finish())
    }

    /// The cached verdict for `key`, if there is one that has not expired at `now`.
    pub(crate) fn get(&self, key: TokenKey, now: Instant) -> Option<Verdict> {
        let mut entries = self.lock();
        match entries.get(&key) {
            Some(entry) if entry.expires > now => Some(entry.verdict),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers `verdict` for `ttl` from `now`. A zero `ttl` stores nothing.
    ///
    /// When full, expired entries go first; if none has expired, the entry closest to its
    /// deadline makes room. That keeps the bound without a background task.
    pub(crate) fn insert(&self, key: TokenKey, verdict: Verdict, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.expires > now);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires)
                    .map(|(k, _)| *k);
                if let Some(victim) = soonest {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(key, Entry { verdict, expires });
    }

    /// Number of entries held, expired or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent (each section
        // is a single map operation), so a poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADMIN: Verdict = Verdict::Valid { admin: true };

    /// A cache holding an admin verdict for token `t`, good for 10 s from the instant returned.
    fn admin_for_ten_seconds() -> (TokenCache, TokenKey, Instant) {
        let cache = TokenCache::new(4);
        let now = Instant::now();
        let key = cache.key("t");
        cache.insert(key, ADMIN, Duration::from_secs(10), now);
        (cache, key, now)
    }

    #[test]
    fn key_is_stable_and_distinguishes_tokens() {
        let cache = TokenCache::new(8);
        assert_eq!(cache.key("abc"), cache.key("abc"));
        assert_ne!(cache.key("abc"), cache.key("abd"));
        assert_ne!(cache.key(""), cache.key("a"));
    }

    #[test]
    fn key_depends_on_per_cache_secret() {
        // Two caches use different keys, so hashes cannot be precomputed.
        let (a, b) = (TokenCache::new(1), TokenCache::new(1));
        assert_ne!(a.key("token"), b.key("token"));
    }

    #[test]
    fn debug_shows_no_token_material() {
        let cache = TokenCache::new(4);
        let key = cache.key("gAAAAsecret-token");
        cache.insert(key, ADMIN, Duration::from_secs(5), Instant::now());
        let printed = format!("{cache:?} {key:?}");
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("entries: 1"), "{printed}");
    }

    #[test]
    fn entries_expire() {
        let (cache, key, now) = admin_for_ten_seconds();
        assert_eq!(cache.get(key, now), Some(ADMIN));
        assert_eq!(cache.get(key, now + Duration::from_secs(9)), Some(ADMIN));
        assert_eq!(cache.get(key, now + Duration::from_secs(10)), None);
        assert_eq!(cache.len(), 0, "an expired entry is dropped when read");
    }

    #[test]
    fn zero_ttl_is_not_stored() {
        let cache = TokenCache::new(4);
        let key = cache.key("t");
        cache.insert(key, Verdict::Invalid, Duration::ZERO, Instant::now());
        assert_eq!(cache.get(key, Instant::now()), None);
    }

    #[test]
    fn newer_verdict_replaces_older() {
        let (cache, key, now) = admin_for_ten_seconds();
        cache.insert(key, Verdict::Invalid, Duration::from_secs(10), now);
        assert_eq!(cache.get(key, now), Some(Verdict::Invalid));
    }

    #[test]
    fn bounded_evicts_expired_then_soonest() {
        let cache = TokenCache::new(3);
        let now = Instant::now();
        let keys: Vec<_> = (0..5).map(|i| cache.key(&format!("t{i}"))).collect();
        cache.insert(keys[0], ADMIN, Duration::from_secs(1), now);
        cache.insert(keys[1], ADMIN, Duration::from_secs(30), now);
        cache.insert(keys[2], ADMIN, Duration::from_secs(20), now);
        // Full; at now+2 s keys[0] has expired and is the one to go.
        let later = now + Duration::from_secs(2);
        cache.insert(keys[3], ADMIN, Duration::from_secs(40), later);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(keys[0], later), None);
        // Full with live entries only: keys[2] (deadline now+20 s) is closest to expiry.
        cache.insert(keys[4], ADMIN, Duration::from_secs(40), later);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(keys[2], later), None);
        assert_eq!(cache.get(keys[1], later), Some(ADMIN));
        assert_eq!(cache.get(keys[3], later), Some(ADMIN));
        assert_eq!(cache.get(keys[4], later), Some(ADMIN));
    }
}
