//! The users of the orgs whose users are searched, held in memory with a
//! trigram index of their search text, so that a listing with a free-text
//! query is answered without a database round trip.
//!
//! Why in memory: the databases' trigram indexes find a rare query's few
//! users quickly, but a listing still costs a round trip per table it reads
//! (users, roles, teams, credentials) and, for a common query, a walk in
//! sort order that tests each user; here both are microseconds.
//!
//! Contract:
//! - It lives beside the cache ([`super::cache`]) and is on exactly when the
//!   cache is: the same invalidations keep it in step.
//! - An org is indexed on its first query listing, by a task of its own;
//!   listings wait for it a little ([`BUILD_WAIT`] in the store), then read
//!   the database. (Waiting is what lets a large org's build finish soon: 50
//!   listings reading the database beside it made it ten times slower.)
//! - A change to a user marks them dirty. Before answering, a listing
//!   reloads from the database every user of its org marked since the org
//!   was last refreshed; refreshes run one at a time, so an older read never
//!   overwrites a newer one. A listing therefore sees every change whose
//!   commit returned before it began.
//! - A change to the org (settings, roles, teams), or changes missed (the
//!   cache disabled, or too many dirty users to reload), drop the org's
//!   index or all of them; the next query listing builds again.
//! - It answers exactly as the database does: a substring of the lower-cased
//!   search text, in (sort key, id) order compared bytewise (SQLite's
//!   `BINARY`, PostgreSQL's `"C"` collation of `users.sort_key`). Locks and
//!   effective chat limits, which depend on the clock and the org's
//!   settings, are computed at answer time.

use std::{
    collections::{BTreeMap, HashMap},
    ops::Bound,
    sync::{Mutex, MutexGuard, PoisonError},
};

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;

use crate::domain::{OrgId, OrgSettings, User, UserFilter, UserId, UserPageKey};

/// A refresh reloads at most this many users; more marked dirty in an org
/// since its last refresh, and rebuilding it reads about as much.
const MAX_REFRESH: usize = 5_000;
/// Dirty users remembered for all orgs together; past this, every index is
/// dropped rather than let an org that is seldom searched hold them.
const MAX_DIRTY: usize = 50_000;
/// From this many trigram candidates on, a listing walks the org in sort
/// order and stops at a full page, rather than sort every candidate: with
/// that many, matches are common enough to fill a page soon.
const SORT_CANDIDATES: u64 = 4_096;

/// A user as read for the index: with when they were locked, from which
/// [`User::locked`] follows at answer time.
pub(super) struct IndexedUser {
    pub user: User,
    pub locked_at: Option<DateTime<Utc>>,
}

pub(super) struct UserIndex {
    state: Mutex<State>,
    /// Woken when a build ends (installed or not) or indexes are dropped.
    built: tokio::sync::Notify,
    /// Held while a refresh reads and applies (see the module doc).
    refresh_turn: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    enabled: bool,
    /// Counts changes to users; a dirty mark is the count when it was made.
    changes: u64,
    /// Names each build, so that one overtaken by a drop installs nothing.
    builds: u64,
    orgs: HashMap<OrgId, Slot>,
    dirty: HashMap<UserId, Dirty>,
}

/// A user changed at this count; in this org, when an index held them (a
/// user never moves), else perhaps in any (a new user, say).
#[derive(Clone, Copy)]
struct Dirty {
    change: u64,
    org_id: Option<OrgId>,
}

impl Dirty {
    fn concerns(&self, org_id: OrgId) -> bool {
        self.org_id.is_none_or(|of| of == org_id)
    }
}

enum Slot {
    Building { build: u64, started: u64 },
    Ready(OrgIndex),
}

/// What a listing may do with an org's index now.
pub(super) enum Readiness {
    /// Off, or just dropped: read the database.
    Unavailable,
    /// Build this (see [`UserIndex::install`]), then wait as for `Building`.
    Build(Build),
    /// Being built: wait for [`UserIndex::built`].
    Building,
    /// These users changed since the org's last refresh: reload them, then
    /// [`UserIndex::apply`] them, before searching.
    Refresh(Vec<UserId>, u64),
    Ready,
}

/// A build to run: [`Build::add`] the org's users, then
/// [`UserIndex::install`]. It is filled outside the index's lock, so that
/// listings and invalidations go on meanwhile.
pub(super) struct Build {
    org_id: OrgId,
    build: u64,
    index: OrgIndex,
}

impl Build {
    pub fn add(&mut self, users: Vec<IndexedUser>) {
        for user in users {
            self.index.upsert(user);
        }
    }
}

impl UserIndex {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            built: tokio::sync::Notify::new(),
            refresh_turn: tokio::sync::Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts (or stops) serving, empty.
    pub fn set_enabled(&self, enabled: bool) {
        let mut state = self.lock();
        state.clear();
        state.enabled = enabled;
        self.built.notify_waiters();
    }

    /// Resolves at the next end of a build or drop of indexes; enable it
    /// before asking [`UserIndex::readiness`], so as not to miss one.
    pub fn built(&self) -> tokio::sync::futures::Notified<'_> {
        self.built.notified()
    }

    pub fn user_changed(&self, user_id: UserId) {
        let mut state = self.lock();
        state.changes += 1;
        // With nothing indexed or being built, there is nothing to refresh.
        if state.orgs.is_empty() {
            return;
        }
        let change = state.changes;
        let org_id = state.orgs.iter().find_map(|(&org_id, slot)| match slot {
            Slot::Ready(index) if index.by_id.contains_key(&user_id) => Some(org_id),
            _ => None,
        });
        state.dirty.insert(user_id, Dirty { change, org_id });
        if state.dirty.len() > MAX_DIRTY {
            state.clear();
        }
    }

    pub fn org_changed(&self, org_id: OrgId) {
        self.lock().orgs.remove(&org_id);
        self.built.notify_waiters();
    }

    pub fn forget_all(&self) {
        self.lock().clear();
        self.built.notify_waiters();
    }

    /// Waits for the turn to refresh.
    pub async fn refresh_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.refresh_turn.lock().await
    }

    pub fn readiness(&self, org_id: OrgId) -> Readiness {
        let mut state = self.lock();
        if !state.enabled {
            return Readiness::Unavailable;
        }
        let State {
            changes,
            builds,
            orgs,
            dirty,
            ..
        } = &mut *state;
        match orgs.get(&org_id) {
            None => {
                *builds += 1;
                let build = *builds;
                orgs.insert(
                    org_id,
                    Slot::Building {
                        build,
                        started: *changes,
                    },
                );
                Readiness::Build(Build {
                    org_id,
                    build,
                    index: OrgIndex::default(),
                })
            }
            Some(Slot::Building { .. }) => Readiness::Building,
            Some(Slot::Ready(index)) => {
                if index.seen == *changes {
                    return Readiness::Ready;
                }
                let pending: Vec<UserId> = dirty
                    .iter()
                    .filter(|(_, d)| d.change > index.seen && d.concerns(org_id))
                    .map(|(&id, _)| id)
                    .collect();
                if pending.is_empty() {
                    Readiness::Ready
                } else if pending.len() > MAX_REFRESH {
                    orgs.remove(&org_id);
                    Readiness::Unavailable
                } else {
                    Readiness::Refresh(pending, *changes)
                }
            }
        }
    }

    /// Puts the built index in place, unless the build was overtaken.
    pub fn install(&self, build: Build) -> bool {
        let mut state = self.lock();
        let started = match state.orgs.get(&build.org_id) {
            Some(&Slot::Building { build: b, started }) if b == build.build => started,
            _ => return false,
        };
        let mut index = build.index;
        index.seen = started;
        state.orgs.insert(build.org_id, Slot::Ready(index));
        self.built.notify_waiters();
        true
    }

    /// Gives up a build that failed; the next listing tries again.
    pub fn abandon(&self, build: Build) {
        let mut state = self.lock();
        if matches!(state.orgs.get(&build.org_id), Some(&Slot::Building { build: b, .. }) if b == build.build)
        {
            state.orgs.remove(&build.org_id);
        }
        self.built.notify_waiters();
    }

    /// Applies a refresh: `reloaded` are those of `ids` still in the org,
    /// read after [`Readiness::Refresh`] named them with `upto`. Call with
    /// the [`UserIndex::refresh_turn`] held.
    pub fn apply(&self, org_id: OrgId, ids: &[UserId], reloaded: Vec<IndexedUser>, upto: u64) {
        let mut state = self.lock();
        let Some(Slot::Ready(index)) = state.orgs.get_mut(&org_id) else {
            return;
        };
        for &id in ids {
            index.remove(id);
        }
        for user in reloaded {
            index.upsert(user);
        }
        index.seen = index.seen.max(upto);
        state.forget_refreshed();
    }

    /// Up to `limit` users matching `filter` (whose query is `query`), in
    /// order after `after`; `None` when the org's index is not ready.
    pub fn search(
        &self,
        org: &OrgSettings,
        filter: &UserFilter,
        query: &str,
        after: Option<&UserPageKey>,
        limit: usize,
    ) -> Option<Vec<(UserPageKey, User)>> {
        let state = self.lock();
        let Some(Slot::Ready(index)) = state.orgs.get(&org.org_id) else {
            return None;
        };
        let cutoff = super::users::lock_cutoff(org);
        let locked = |entry: &Entry| super::users::lock_in_force(entry.locked_at, cutoff);
        let criteria = &filter.criteria;
        let keep = |entry: &Entry| {
            let user = &entry.user;
            filter.scope.covers(user.id, &user.team_ids)
                && criteria
                    .role
                    .as_ref()
                    .is_none_or(|r| user.roles.contains(r))
                && criteria.team.is_none_or(|t| user.team_ids.contains(&t))
                && criteria.state.is_none_or(|s| user.state == s)
                && criteria.locked.is_none_or(|l| locked(entry) == l)
        };
        let found = index.search(&query.to_lowercase(), keep, after, limit);
        Some(
            found
                .into_iter()
                .map(|entry| {
                    let mut user = entry.user.clone();
                    user.locked = locked(entry);
                    user.effective_max_chats = user.max_chats.unwrap_or(org.default_max_chats);
                    (entry.page_key(), user)
                })
                .collect(),
        )
    }
}

impl State {
    fn clear(&mut self) {
        self.orgs.clear();
        self.dirty.clear();
    }

    /// Drops the dirty marks that every org they concern has refreshed past.
    fn forget_refreshed(&mut self) {
        let orgs = &self.orgs;
        let reflected = |org_id: &OrgId, slot: &Slot, dirty: &Dirty| {
            !dirty.concerns(*org_id)
                || match slot {
                    Slot::Building { started, .. } => *started >= dirty.change,
                    Slot::Ready(index) => index.seen >= dirty.change,
                }
        };
        self.dirty.retain(|_, dirty| {
            !orgs
                .iter()
                .all(|(org_id, slot)| reflected(org_id, slot, dirty))
        });
    }
}

struct Entry {
    user: User,
    locked_at: Option<DateTime<Utc>>,
    search_text: Box<str>,
    /// (sort key, id as text): the listing's order, as page keys have it.
    order_key: OrderKey,
}

type OrderKey = (Box<str>, Box<str>);

impl Entry {
    fn page_key(&self) -> UserPageKey {
        UserPageKey {
            sort_key: self.order_key.0.to_string(),
            user_id: self.order_key.1.to_string(),
        }
    }
}

/// One org's users. Each has a slot; the trigram posting lists name slots,
/// and a freed slot is reused.
#[derive(Default)]
struct OrgIndex {
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_id: HashMap<UserId, u32>,
    order: BTreeMap<OrderKey, u32>,
    trigrams: HashMap<[u8; 3], RoaringBitmap>,
    /// Every change up to this count is reflected.
    seen: u64,
}

impl OrgIndex {
    fn upsert(&mut self, indexed: IndexedUser) {
        self.remove(indexed.user.id);
        let entry = Entry {
            search_text: indexed.user.search_text().into(),
            order_key: (
                indexed.user.display_name.sort_key().into(),
                indexed.user.id.to_string().into(),
            ),
            user: indexed.user,
            locked_at: indexed.locked_at,
        };
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                // An org holds far fewer than 2³² users.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        for trigram in trigrams(entry.search_text.as_bytes()) {
            self.trigrams.entry(trigram).or_default().insert(slot);
        }
        self.by_id.insert(entry.user.id, slot);
        self.order.insert(entry.order_key.clone(), slot);
        self.slots[slot as usize] = Some(entry);
    }

    fn remove(&mut self, id: UserId) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        let Some(entry) = self.slots[slot as usize].take() else {
            return;
        };
        for trigram in trigrams(entry.search_text.as_bytes()) {
            if let Some(slots) = self.trigrams.get_mut(&trigram) {
                slots.remove(slot);
                if slots.is_empty() {
                    self.trigrams.remove(&trigram);
                }
            }
        }
        self.order.remove(&entry.order_key);
        self.free.push(slot);
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.slots.get(slot as usize)?.as_ref()
    }

    /// Up to `limit` entries whose search text contains `query` (lower
    /// case) and that `keep` keeps, in order after `after`.
    fn search(
        &self,
        query: &str,
        keep: impl Fn(&Entry) -> bool,
        after: Option<&UserPageKey>,
        limit: usize,
    ) -> Vec<&Entry> {
        let matches = |entry: &Entry| entry.search_text.contains(query) && keep(entry);
        let after: Option<OrderKey> = after.map(|after| {
            (
                after.sort_key.as_str().into(),
                after.user_id.as_str().into(),
            )
        });
        let is_after = |entry: &Entry| after.as_ref().is_none_or(|after| entry.order_key > *after);
        let candidates = self.candidates(query.as_bytes());
        if let Some(candidates) = candidates.as_ref().filter(|c| c.len() < SORT_CANDIDATES) {
            let mut found: Vec<&Entry> = candidates
                .iter()
                .filter_map(|slot| self.entry(slot))
                .filter(|&entry| matches(entry) && is_after(entry))
                .collect();
            found.sort_unstable_by(|a, b| a.order_key.cmp(&b.order_key));
            found.truncate(limit);
            return found;
        }
        let walk = match after {
            Some(after) => self.order.range((Bound::Excluded(after), Bound::Unbounded)),
            None => self.order.range(..),
        };
        walk.filter(|&(_, &slot)| candidates.as_ref().is_none_or(|c| c.contains(slot)))
            .filter_map(|(_, &slot)| self.entry(slot))
            .filter(|&entry| matches(entry))
            .take(limit)
            .collect()
    }

    /// The slots holding every trigram of `query`: a superset of its
    /// matches. `None` for a query under three bytes, which trigrams cannot
    /// narrow.
    fn candidates(&self, query: &[u8]) -> Option<RoaringBitmap> {
        let mut lists = Vec::new();
        for trigram in trigrams(query) {
            match self.trigrams.get(&trigram) {
                Some(slots) => lists.push(slots),
                None => return Some(RoaringBitmap::new()),
            }
        }
        lists.sort_unstable_by_key(|slots| slots.len());
        let (first, rest) = lists.split_first()?;
        let mut candidates = (*first).clone();
        for slots in rest {
            candidates &= *slots;
            if candidates.is_empty() {
                break;
            }
        }
        Some(candidates)
    }
}

/// The distinct byte trigrams of `text`. Bytes, not characters: UTF-8 is
/// self-synchronising, so a byte substring of valid text is a character
/// substring too.
fn trigrams(text: &[u8]) -> impl Iterator<Item = [u8; 3]> {
    let mut seen: Vec<[u8; 3]> = text.windows(3).map(|w| [w[0], w[1], w[2]]).collect();
    seen.sort_unstable();
    seen.dedup();
    seen.into_iter()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{
        DisplayName, Email, OrgSlug, ProfileText, UserCriteria, UserScope, UserState,
    };

    fn org() -> OrgSettings {
        OrgSettings::new(OrgSlug::parse("acme").unwrap(), "Acme".into())
    }

    fn user(name: &str) -> User {
        let id = UserId::generate();
        User {
            id,
            email: Email::parse(&format!("{}@example.com", id.to_string().get(..8).unwrap()))
                .unwrap(),
            login_id: None,
            display_name: DisplayName::parse(name).unwrap(),
            public_name: ProfileText::default(),
            state: UserState::Active,
            locked: false,
            roles: Vec::new(),
            team_ids: Vec::new(),
            max_chats: None,
            effective_max_chats: 0,
            login_with: None,
            language: ProfileText::default(),
            landline_phone: ProfileText::default(),
            mobile_phone: ProfileText::default(),
            job_title: ProfileText::default(),
            location: ProfileText::default(),
            can_view_colleagues_chats: false,
            password_change_required: false,
            version: 1,
            created_at: Utc::now(),
            last_login_at: None,
            last_logout_at: None,
            suspend_reason: ProfileText::default(),
            has_avatar: false,
        }
    }

    fn indexed(user: &User) -> IndexedUser {
        IndexedUser {
            user: user.clone(),
            locked_at: None,
        }
    }

    fn install(index: &UserIndex, mut build: Build, users: Vec<IndexedUser>) -> bool {
        build.add(users);
        index.install(build)
    }

    /// An index with `users` installed for `org`.
    fn ready(org: &OrgSettings, users: &[User]) -> UserIndex {
        let index = UserIndex::new();
        index.set_enabled(true);
        let Readiness::Build(build) = index.readiness(org.org_id) else {
            panic!("an unindexed org is built");
        };
        assert!(install(&index, build, users.iter().map(indexed).collect()));
        index
    }

    fn filter(query: &str) -> UserFilter {
        UserFilter {
            criteria: UserCriteria {
                query: Some(query.into()),
                ..UserCriteria::default()
            },
            scope: UserScope::Org,
        }
    }

    fn names(
        index: &UserIndex,
        org: &OrgSettings,
        query: &str,
        after: Option<&UserPageKey>,
        limit: usize,
    ) -> Vec<String> {
        index
            .search(org, &filter(query), query, after, limit)
            .expect("ready")
            .into_iter()
            .map(|(_, user)| user.display_name.as_str().to_owned())
            .collect()
    }

    #[test]
    fn a_query_matches_a_substring_in_sort_order_ignoring_case() {
        let org = org();
        let index = ready(&org, &[user("Bob Ann"), user("Cat"), user("Ann Lee")]);
        assert_eq!(names(&index, &org, "ANN", None, 10), ["Ann Lee", "Bob Ann"]);
        assert_eq!(names(&index, &org, "an", None, 10), ["Ann Lee", "Bob Ann"]);
        assert_eq!(names(&index, &org, "n l", None, 10), ["Ann Lee"]);
    }

    #[test]
    fn trigrams_narrow_but_only_the_substring_decides() {
        let org = org();
        let index = ready(&org, &[user("Abc Bcd")]);
        // Both of "abcd"'s trigrams are there, but not "abcd".
        assert!(names(&index, &org, "abcd", None, 10).is_empty());
        assert!(names(&index, &org, "zzz", None, 10).is_empty());
    }

    #[test]
    fn pages_continue_after_their_key_on_both_paths() {
        let org = org();
        // More candidates than are sorted: "agent" walks the sort order,
        // "agent 1" sorts its candidates.
        let users: Vec<User> = (0..SORT_CANDIDATES + 10)
            .map(|n| user(&format!("Agent {n:05}")))
            .collect();
        let index = ready(&org, &users);
        for query in ["agent", "agent 1", "ag"] {
            let mut all = Vec::new();
            let mut after = None;
            loop {
                let page = index
                    .search(&org, &filter(query), query, after.as_ref(), 500)
                    .unwrap();
                let Some((key, _)) = page.last() else { break };
                after = Some(key.clone());
                all.extend(
                    page.into_iter()
                        .map(|(_, u)| u.display_name.as_str().to_owned()),
                );
            }
            let mut want: Vec<String> = users
                .iter()
                .map(|u| u.display_name.as_str().to_owned())
                .filter(|n| n.to_lowercase().contains(query))
                .collect();
            want.sort();
            assert_eq!(all, want, "{query}");
        }
    }

    #[test]
    fn namesakes_are_ordered_by_id() {
        let org = org();
        let twins = [user("Twin"), user("Twin"), user("Twin")];
        let index = ready(&org, &twins);
        let found = index
            .search(&org, &filter("twin"), "twin", None, 10)
            .unwrap();
        let mut ids: Vec<String> = twins.iter().map(|u| u.id.to_string()).collect();
        ids.sort();
        let got: Vec<String> = found.iter().map(|(k, _)| k.user_id.clone()).collect();
        assert_eq!(got, ids);
    }

    #[test]
    fn a_refreshed_user_is_found_by_their_new_text_only() {
        let org = org();
        let mut ann = user("Ann Old");
        let index = ready(&org, std::slice::from_ref(&ann));
        index.user_changed(ann.id);
        let Readiness::Refresh(ids, upto) = index.readiness(org.org_id) else {
            panic!("the change is pending");
        };
        assert_eq!(ids, [ann.id]);
        ann.display_name = DisplayName::parse("Ann New").unwrap();
        index.apply(org.org_id, &ids, vec![indexed(&ann)], upto);
        assert!(matches!(index.readiness(org.org_id), Readiness::Ready));
        assert!(names(&index, &org, "old", None, 10).is_empty());
        assert_eq!(names(&index, &org, "new", None, 10), ["Ann New"]);
        assert!(
            index.lock().dirty.is_empty(),
            "refreshed marks are forgotten"
        );
    }

    #[test]
    fn a_user_gone_from_the_org_leaves_the_index() {
        let org = org();
        let ann = user("Ann");
        let index = ready(&org, std::slice::from_ref(&ann));
        index.user_changed(ann.id);
        index.apply(org.org_id, &[ann.id], Vec::new(), 1);
        assert!(names(&index, &org, "ann", None, 10).is_empty());
        // Its slot is taken by the next user.
        index.user_changed(UserId::generate());
        let bob = user("Bob");
        index.apply(org.org_id, &[bob.id], vec![indexed(&bob)], 2);
        let state = index.lock();
        let Some(Slot::Ready(org_index)) = state.orgs.get(&org.org_id) else {
            panic!("ready");
        };
        assert_eq!(org_index.slots.len(), 1);
    }

    #[test]
    fn a_change_to_a_user_indexed_elsewhere_is_not_pending_here() {
        let (acme, globex) = (org(), org());
        let ann = user("Ann");
        let index = ready(&acme, std::slice::from_ref(&ann));
        let Readiness::Build(build) = index.readiness(globex.org_id) else {
            panic!("build");
        };
        assert!(install(&index, build, vec![indexed(&user("Bob"))]));
        index.user_changed(ann.id);
        assert!(matches!(index.readiness(globex.org_id), Readiness::Ready));
        assert!(matches!(
            index.readiness(acme.org_id),
            Readiness::Refresh(..)
        ));
        // A user no index holds (a new one) may be any org's.
        index.user_changed(UserId::generate());
        assert!(matches!(
            index.readiness(globex.org_id),
            Readiness::Refresh(..)
        ));
    }

    #[test]
    fn a_change_during_a_build_is_pending_once_it_is_installed() {
        let org = org();
        let index = UserIndex::new();
        index.set_enabled(true);
        let Readiness::Build(build) = index.readiness(org.org_id) else {
            panic!("build");
        };
        assert!(matches!(index.readiness(org.org_id), Readiness::Building));
        let ann = user("Ann");
        index.user_changed(ann.id);
        assert!(install(&index, build, vec![indexed(&ann)]));
        assert!(
            matches!(index.readiness(org.org_id), Readiness::Refresh(ids, _) if ids == [ann.id])
        );
    }

    #[test]
    fn a_build_overtaken_by_an_org_change_installs_nothing() {
        let org = org();
        let index = UserIndex::new();
        index.set_enabled(true);
        let Readiness::Build(build) = index.readiness(org.org_id) else {
            panic!("build");
        };
        index.org_changed(org.org_id);
        assert!(!install(&index, build, vec![indexed(&user("Ann"))]));
        assert!(matches!(index.readiness(org.org_id), Readiness::Build(_)));
    }

    #[test]
    fn an_org_change_drops_its_index_only() {
        let (acme, globex) = (org(), org());
        let index = ready(&acme, &[user("Ann")]);
        let Readiness::Build(build) = index.readiness(globex.org_id) else {
            panic!("build");
        };
        assert!(install(&index, build, vec![indexed(&user("Bob"))]));
        index.org_changed(acme.org_id);
        assert!(
            index
                .search(&acme, &filter("ann"), "ann", None, 10)
                .is_none()
        );
        assert_eq!(names(&index, &globex, "bob", None, 10), ["Bob"]);
    }

    #[test]
    fn a_disabled_index_serves_nothing_and_builds_nothing() {
        let org = org();
        let index = ready(&org, &[user("Ann")]);
        index.set_enabled(false);
        assert!(
            index
                .search(&org, &filter("ann"), "ann", None, 10)
                .is_none()
        );
        assert!(matches!(
            index.readiness(org.org_id),
            Readiness::Unavailable
        ));
    }

    #[test]
    fn too_many_changes_to_refresh_drop_the_index() {
        let org = org();
        let index = ready(&org, &[user("Ann")]);
        for _ in 0..=MAX_REFRESH {
            index.user_changed(UserId::generate());
        }
        assert!(matches!(
            index.readiness(org.org_id),
            Readiness::Unavailable
        ));
        assert!(matches!(index.readiness(org.org_id), Readiness::Build(_)));
    }

    #[test]
    fn locks_and_chat_limits_are_judged_at_answer_time() {
        let mut org = org();
        let ann = user("Ann");
        let index = UserIndex::new();
        index.set_enabled(true);
        let Readiness::Build(build) = index.readiness(org.org_id) else {
            panic!("build");
        };
        let locked_at = Some(Utc::now() - chrono::Duration::hours(1));
        assert!(install(
            &index,
            build,
            vec![IndexedUser {
                user: ann,
                locked_at
            }]
        ));
        let read = |org: &OrgSettings, locked: Option<bool>| {
            let mut filter = filter("ann");
            filter.criteria.locked = locked;
            index.search(org, &filter, "ann", None, 10).unwrap()
        };
        org.lockout_duration = Duration::from_secs(30 * 60);
        org.default_max_chats = 7;
        let found = read(&org, None);
        assert!(!found[0].1.locked, "the lock ran out");
        assert_eq!(found[0].1.effective_max_chats, 7);
        assert!(read(&org, Some(true)).is_empty());
        org.lockout_duration = Duration::ZERO;
        assert!(read(&org, None)[0].1.locked, "locked until unlocked");
        assert_eq!(read(&org, Some(true)).len(), 1);
    }

    #[test]
    fn filters_and_scope_narrow_the_matches() {
        let org = org();
        let team = crate::domain::TeamId::generate();
        let mut ann = user("Ann One");
        ann.team_ids = vec![team];
        let mut bob = user("Ann Two");
        bob.state = UserState::Suspended;
        let index = ready(&org, &[ann.clone(), bob.clone()]);
        let search = |filter: UserFilter| {
            index
                .search(&org, &filter, "ann", None, 10)
                .unwrap()
                .into_iter()
                .map(|(_, u)| u.id)
                .collect::<Vec<_>>()
        };
        let mut by_state = filter("ann");
        by_state.criteria.state = Some(UserState::Suspended);
        assert_eq!(search(by_state), [bob.id]);
        let mut by_team = filter("ann");
        by_team.criteria.team = Some(team);
        assert_eq!(search(by_team), [ann.id]);
        let mut scoped = filter("ann");
        scoped.scope = UserScope::Teams {
            teams: vec![team],
            me: Some(bob.id),
        };
        assert_eq!(search(scoped), [ann.id, bob.id]);
        let mut me = filter("ann");
        me.scope = UserScope::Me(Some(bob.id));
        assert_eq!(search(me), [bob.id]);
    }
}
