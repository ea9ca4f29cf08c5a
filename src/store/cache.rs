//! What nearly every request reads before it can do anything — the session
//! behind its token, the org's settings, the org's custom roles and a user —
//! kept in memory so that a read needs no database round trip.
//!
//! Contract:
//! - Only reads outside a transaction ([`super::Store::read`]) use it; a
//!   write transaction always reads the database.
//! - Every write transaction records what it changed ([`Change`]); the
//!   entries go when it commits, on this replica before the commit returns
//!   and, on PostgreSQL, on every other replica through a notification that
//!   PostgreSQL delivers at commit ([`super::Store::listen`]).
//! - On PostgreSQL the cache is off until that listener is connected, off
//!   again while it reconnects, and starts empty each time, since
//!   notifications sent meanwhile were missed.
//! - A read that overlapped any change is not kept: its result may predate
//!   the change. So an entry never outlives the change that made it stale.
//! - Values that go stale with time alone are not kept past it: a session
//!   is checked against its expiry, and a locked user is not kept (the lock
//!   may run out).
//! - The same invalidations keep the user search index in step
//!   ([`super::user_index`]); it is on exactly when the cache is.

use std::{
    collections::HashMap,
    num::NonZeroUsize,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use chrono::{DateTime, Utc};
use lru::LruCache;

use super::{SessionRecord, user_index::UserIndex};
use crate::domain::{OrgId, OrgSettings, PermissionSet, RoleName, User, UserId};

/// What a write transaction changed, as far as cached reads are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The user's row, roles, teams, credential or sessions.
    User(UserId),
    /// Something every user of the org is read with: its settings, custom
    /// roles or teams.
    Org(OrgId),
}

impl Change {
    /// The form carried by a PostgreSQL notification.
    pub fn encode(&self) -> String {
        match self {
            Change::User(id) => format!("u:{id}"),
            Change::Org(id) => format!("o:{id}"),
        }
    }

    pub fn decode(text: &str) -> Option<Change> {
        match text.split_once(':')? {
            ("u", id) => UserId::parse(id).ok().map(Change::User),
            ("o", id) => OrgId::parse(id).ok().map(Change::Org),
            _ => None,
        }
    }
}

/// Proof that no change happened since a read began; see [`Cache::keep`].
#[derive(Clone, Copy)]
pub struct Ticket(u64);

pub struct Cache {
    entries: Mutex<Entries>,
    user_index: UserIndex,
}

/// A user as read, with the org it belongs to (a read names both).
#[derive(Clone)]
struct CachedUser {
    org_id: OrgId,
    user: User,
}

pub(super) struct Entries {
    enabled: bool,
    /// Counts changes; a read's result is kept only if this has not moved
    /// since the read began.
    changes: u64,
    orgs: LruCache<OrgId, OrgSettings>,
    roles: LruCache<OrgId, Arc<HashMap<RoleName, PermissionSet>>>,
    users: LruCache<UserId, CachedUser>,
    /// By token hash.
    sessions: LruCache<String, SessionRecord>,
    /// The token hashes cached for each user, so a change to the user ends
    /// them all.
    sessions_of: HashMap<UserId, Vec<String>>,
}

impl Cache {
    /// A cache of at most `capacity` users and as many sessions (orgs and
    /// their roles: a tenth of it). Off until [`Cache::enable`].
    pub fn new(capacity: NonZeroUsize) -> Self {
        let small = NonZeroUsize::new(capacity.get() / 10).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(Entries {
                enabled: false,
                changes: 0,
                orgs: LruCache::new(small),
                roles: LruCache::new(small),
                users: LruCache::new(capacity),
                sessions: LruCache::new(capacity),
                sessions_of: HashMap::new(),
            }),
            user_index: UserIndex::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts serving, empty.
    pub fn enable(&self) {
        let mut entries = self.lock();
        entries.clear();
        entries.enabled = true;
        self.user_index.set_enabled(true);
    }

    /// Stops serving (nothing tells it of changes any more).
    pub fn disable(&self) {
        let mut entries = self.lock();
        entries.clear();
        entries.enabled = false;
        self.user_index.set_enabled(false);
    }

    /// Taken before a read whose result may be kept; `None` when the cache
    /// is off.
    pub fn ticket(&self) -> Option<Ticket> {
        let entries = self.lock();
        entries.enabled.then_some(Ticket(entries.changes))
    }

    /// Runs `keep` only if nothing changed since `ticket` was taken.
    pub(super) fn keep(&self, ticket: Ticket, keep: impl FnOnce(&mut Entries)) {
        let mut entries = self.lock();
        if entries.enabled && entries.changes == ticket.0 {
            keep(&mut entries);
        }
    }

    pub fn invalidate(&self, changes: impl IntoIterator<Item = Change>) {
        let mut entries = self.lock();
        for change in changes {
            entries.changes += 1;
            match change {
                Change::User(id) => {
                    entries.forget_user(id);
                    self.user_index.user_changed(id);
                }
                Change::Org(id) => {
                    entries.clear();
                    self.user_index.org_changed(id);
                }
            }
        }
    }

    /// Forgets everything (a notification too long to name each change).
    pub fn invalidate_all(&self) {
        self.lock().clear();
        self.user_index.forget_all();
    }

    pub(super) fn user_index(&self) -> &UserIndex {
        &self.user_index
    }

    pub fn org(&self, org_id: OrgId) -> Option<OrgSettings> {
        self.lock().orgs.get(&org_id).cloned()
    }

    pub fn roles(&self, org_id: OrgId) -> Option<Arc<HashMap<RoleName, PermissionSet>>> {
        self.lock().roles.get(&org_id).cloned()
    }

    pub fn user(&self, org_id: OrgId, user_id: UserId) -> Option<User> {
        let mut entries = self.lock();
        let cached = entries.users.get(&user_id)?;
        (cached.org_id == org_id).then(|| cached.user.clone())
    }

    pub fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Option<SessionRecord> {
        let mut entries = self.lock();
        let session = entries.sessions.get(token_hash)?;
        (session.expires_at > now).then(|| session.clone())
    }
}

impl Entries {
    fn clear(&mut self) {
        self.changes += 1;
        self.orgs.clear();
        self.roles.clear();
        self.users.clear();
        self.sessions.clear();
        self.sessions_of.clear();
    }

    fn forget_user(&mut self, user_id: UserId) {
        self.users.pop(&user_id);
        for token_hash in self.sessions_of.remove(&user_id).unwrap_or_default() {
            self.sessions.pop(&token_hash);
        }
    }

    pub(super) fn keep_org(&mut self, org: OrgSettings) {
        self.orgs.put(org.org_id, org);
    }

    pub(super) fn keep_roles(
        &mut self,
        org_id: OrgId,
        roles: Arc<HashMap<RoleName, PermissionSet>>,
    ) {
        self.roles.put(org_id, roles);
    }

    pub(super) fn keep_user(&mut self, org_id: OrgId, user: User) {
        if !user.locked {
            self.users.put(user.id, CachedUser { org_id, user });
        }
    }

    pub(super) fn keep_session(&mut self, token_hash: String, session: SessionRecord) {
        let user_id = session.user_id;
        // `push` hands back what it displaced: an evicted entry, or the old
        // value under the same hash.
        if let Some((evicted_hash, evicted)) = self.sessions.push(token_hash.clone(), session)
            && evicted_hash != token_hash
        {
            self.unlink_session(evicted.user_id, &evicted_hash);
        }
        let hashes = self.sessions_of.entry(user_id).or_default();
        if !hashes.contains(&token_hash) {
            hashes.push(token_hash);
        }
    }

    fn unlink_session(&mut self, user_id: UserId, token_hash: &str) {
        if let Some(hashes) = self.sessions_of.get_mut(&user_id) {
            hashes.retain(|h| h != token_hash);
            if hashes.is_empty() {
                self.sessions_of.remove(&user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::domain::SessionId;

    fn session(user_id: UserId, expires_in: Duration) -> SessionRecord {
        SessionRecord {
            session_id: SessionId::generate(),
            org_id: OrgId::generate(),
            user_id,
            expires_at: Utc::now() + expires_in,
        }
    }

    fn cache() -> Cache {
        let cache = Cache::new(NonZeroUsize::new(4).unwrap());
        cache.enable();
        cache
    }

    fn keep_session(cache: &Cache, hash: &str, record: SessionRecord) {
        let ticket = cache.ticket().unwrap();
        cache.keep(ticket, |e| e.keep_session(hash.into(), record));
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_kept() {
        let cache = cache();
        let user = UserId::generate();
        let ticket = cache.ticket().unwrap();
        cache.invalidate([Change::User(UserId::generate())]);
        cache.keep(ticket, |e| {
            e.keep_session("h".into(), session(user, Duration::hours(1)))
        });
        assert!(cache.session("h", Utc::now()).is_none());
    }

    #[test]
    fn a_change_to_a_user_ends_their_cached_sessions_only() {
        let cache = cache();
        let (ann, bob) = (UserId::generate(), UserId::generate());
        keep_session(&cache, "a1", session(ann, Duration::hours(1)));
        keep_session(&cache, "a2", session(ann, Duration::hours(1)));
        keep_session(&cache, "b1", session(bob, Duration::hours(1)));
        cache.invalidate([Change::User(ann)]);
        assert!(cache.session("a1", Utc::now()).is_none());
        assert!(cache.session("a2", Utc::now()).is_none());
        assert!(cache.session("b1", Utc::now()).is_some());
    }

    #[test]
    fn an_expired_session_is_not_served() {
        let cache = cache();
        keep_session(
            &cache,
            "h",
            session(UserId::generate(), Duration::seconds(1)),
        );
        assert!(cache.session("h", Utc::now()).is_some());
        assert!(
            cache
                .session("h", Utc::now() + Duration::seconds(2))
                .is_none()
        );
    }

    #[test]
    fn an_evicted_session_leaves_no_trace_under_its_user() {
        let cache = cache();
        let ann = UserId::generate();
        for n in 0..5 {
            keep_session(&cache, &format!("h{n}"), session(ann, Duration::hours(1)));
        }
        let entries = cache.lock();
        assert_eq!(entries.sessions.len(), 4);
        assert_eq!(entries.sessions_of[&ann].len(), 4);
    }

    #[test]
    fn a_disabled_cache_serves_and_keeps_nothing() {
        let cache = cache();
        keep_session(&cache, "h", session(UserId::generate(), Duration::hours(1)));
        cache.disable();
        assert!(cache.session("h", Utc::now()).is_none());
        assert!(cache.ticket().is_none());
    }

    #[test]
    fn changes_travel_as_text_and_back() {
        for change in [
            Change::User(UserId::generate()),
            Change::Org(OrgId::generate()),
        ] {
            assert_eq!(Change::decode(&change.encode()), Some(change));
        }
        assert_eq!(Change::decode("*"), None);
        assert_eq!(Change::decode("u:not-an-id"), None);
    }
}
