use super::{TeamId, UserId};

/// Which users a principal may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserScope {
    Org,
    /// Members of these teams, and oneself.
    Teams {
        teams: Vec<TeamId>,
        me: Option<UserId>,
    },
    /// Only oneself.
    Me(Option<UserId>),
}

impl UserScope {
    pub fn covers(&self, user_id: UserId, user_teams: &[TeamId]) -> bool {
        match self {
            UserScope::Org => true,
            UserScope::Teams { teams, me } => {
                *me == Some(user_id) || user_teams.iter().any(|t| teams.contains(t))
            }
            UserScope::Me(me) => *me == Some(user_id),
        }
    }
}
