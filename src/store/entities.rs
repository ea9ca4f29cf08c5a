//! sea-orm entities, one per table of the migrations. Private to `store`:
//! repositories turn rows into domain types.

macro_rules! relationless {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod orgs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "orgs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub slug: String,
        pub name: String,
        pub created_at: DateTimeUtc,
        pub seat_limit: Option<i32>,
        pub default_max_chats: i32,
        pub password_min_length: i32,
        pub lockout_threshold: i32,
        pub lockout_duration_secs: i64,
        pub login_with: String,
        pub invite_lifetime_secs: i64,
        pub session_lifetime_secs: i64,
        pub presence_lease_secs: i64,
        pub version: i64,
        /// `active` or `suspended`.
        pub state: String,
        pub suspended_at: Option<DateTimeUtc>,
        pub suspend_reason: Option<String>,
        /// The `request_id` of the CreateOrg call that created it.
        pub create_request_id: Option<String>,
    }
    relationless!();
}

pub mod users {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub email: String,
        pub login_id: Option<String>,
        pub display_name: String,
        pub sort_key: String,
        pub search_text: String,
        pub public_name: String,
        pub state: String,
        pub locked_at: Option<DateTimeUtc>,
        pub max_chats: Option<i32>,
        pub login_with: Option<String>,
        pub language: String,
        pub landline_phone: String,
        pub mobile_phone: String,
        pub job_title: String,
        pub location: String,
        pub can_view_colleagues_chats: bool,
        pub version: i64,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub last_login_at: Option<DateTimeUtc>,
        pub last_logout_at: Option<DateTimeUtc>,
        pub suspend_reason: Option<String>,
        pub has_avatar: bool,
    }
    relationless!();
}

pub mod roles {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub description: String,
        /// Space-separated permission names.
        pub permissions: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }
    relationless!();
}

pub mod user_roles {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub role_name: String,
    }
    relationless!();
}

pub mod teams {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "teams")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub name: String,
        pub description: String,
        pub version: i64,
        pub created_at: DateTimeUtc,
    }
    relationless!();
}

pub mod team_members {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "team_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub team_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
    }
    relationless!();
}

pub mod credentials {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub password_hash: String,
        pub password_change_required: bool,
        pub failed_logins: i32,
        pub updated_at: DateTimeUtc,
    }
    relationless!();
}

pub mod sessions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub user_id: String,
        pub token_hash: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
    }
    relationless!();
}

pub mod audit_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub occurred_at: DateTimeUtc,
        pub actor_kind: String,
        pub actor_id: Option<String>,
        pub action: String,
        pub target_user_id: Option<String>,
        pub request_id: Option<String>,
        pub peer: Option<String>,
        pub details: String,
    }
    relationless!();
}

pub mod idempotency_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub operation: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub resource_id: String,
        pub created_at: DateTimeUtc,
    }
    relationless!();
}

pub mod invites {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "invites")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub user_id: String,
        pub token_hash: String,
        pub created_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
    }
    relationless!();
}

pub mod avatars {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "avatars")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub content_type: String,
        pub image: Vec<u8>,
        pub updated_at: DateTimeUtc,
    }
    relationless!();
}

pub mod user_tombstones {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_tombstones")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub email: String,
        pub display_name: String,
        pub deleted_at: DateTimeUtc,
        pub deleted_by: Option<String>,
    }
    relationless!();
}

pub mod api_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub name: String,
        /// Space-separated permission names.
        pub scopes: String,
        pub secret_hash: String,
        pub secret_prefix: String,
        pub created_by: Option<String>,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
    }
    relationless!();
}

pub mod presence {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "presence")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub org_id: String,
        pub status: String,
        pub status_changed_at: DateTimeUtc,
        pub active_chats: i32,
        pub lease_expires_at: Option<DateTimeUtc>,
        pub effective_max_chats: i32,
        pub max_chats_overridden: bool,
        /// Comma-separated team ids.
        pub team_ids: String,
        pub can_handle_chats: bool,
        pub watched: bool,
    }
    relationless!();
}

pub mod presence_sequences {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "presence_sequences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: String,
        pub last_sequence: i64,
    }
    relationless!();
}

pub mod presence_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "presence_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub user_id: String,
        pub reason: String,
        pub occurred_at: DateTimeUtc,
        pub status: String,
        pub status_changed_at: DateTimeUtc,
        pub active_chats: i32,
        pub effective_max_chats: i32,
        pub max_chats_overridden: bool,
        pub team_ids: String,
        pub can_handle_chats: bool,
        pub watched: bool,
        pub prev_status: String,
        pub prev_team_ids: String,
        pub prev_watched: bool,
        pub prev_active_chats: i32,
    }
    relationless!();
}

pub mod import_jobs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub org_id: String,
        pub file_name: String,
        pub uploaded_at: DateTimeUtc,
        pub uploaded_by: String,
        pub status: String,
        pub total_rows: i64,
        pub imported_rows: i64,
        pub failed_rows: i64,
        pub finished_at: Option<DateTimeUtc>,
        pub dry_run: bool,
    }
    relationless!();
}

pub mod import_report_lines {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "import_report_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub job_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i64,
        pub line_no: i64,
        pub text: String,
    }
    relationless!();
}

pub mod platform_api_keys {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "platform_api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub secret_hash: String,
        pub secret_prefix: String,
        pub created_at: DateTimeUtc,
        pub last_used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
    }
    relationless!();
}

pub mod platform_audit_events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "platform_audit_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub occurred_at: DateTimeUtc,
        /// `platform_key` or `operator`.
        pub actor_kind: String,
        pub actor_id: Option<String>,
        pub action: String,
        pub org_id: Option<String>,
        pub org_slug: Option<String>,
        pub request_id: Option<String>,
        pub peer: Option<String>,
        pub details: String,
    }
    relationless!();
}
