//! Invitations end to end: the email reaches a real SMTP server, the link's
//! token activates the user.

use roster::api::pb;
use tonic::Code;

use crate::{
    helpers::{TestApp, reason, spawn_app_with},
    smtp::{SmtpSink, decoded, invite_token},
};

async fn app_with_smtp() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url.clone();
    let app = spawn_app_with(|config| {
        config.smtp_url = Some(url);
        config.public_url = "https://roster.example.com".into();
    })
    .await;
    (app, sink)
}

fn invite_request(email: &str, name: &str) -> pb::InviteUserRequest {
    pb::InviteUserRequest {
        user: Some(pb::User {
            email: email.into(),
            display_name: name.into(),
            roles: vec!["agent".into(), "supervisor".into()],
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

async fn accept(
    app: &TestApp,
    token: &str,
    password: &str,
) -> Result<pb::AcceptInviteResponse, tonic::Status> {
    app.auth()
        .accept_invite(pb::AcceptInviteRequest {
            invite_token: token.into(),
            password: password.into(),
            display_name: String::new(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn an_invitee_accepts_with_the_emailed_link_and_is_signed_in() {
    let (app, sink) = app_with_smtp().await;
    let invited = app
        .admin_users()
        .invite_user(invite_request("new.agent@example.com", "New Agent"))
        .await
        .expect("invited")
        .into_inner();
    let user = invited.user.expect("user");
    assert_eq!(user.state, pb::UserState::Invited as i32);
    assert!(invited.invite_expires_at.is_some());

    let mail = sink.wait_for(1).await.remove(0);
    assert!(mail.contains("new.agent@example.com"), "{mail}");
    assert!(
        mail.contains("https://roster.example.com/accept-invite?token="),
        "{mail}"
    );
    let token = invite_token(&mail);
    assert!(token.starts_with("ri_"), "{token}");

    // Invited users cannot sign in yet.
    let status = app
        .try_login("new.agent@example.com", "the chosen password")
        .await
        .expect_err("not yet");
    assert_eq!(status.code(), Code::Unauthenticated);

    let accepted = accept(&app, &token, "the chosen password")
        .await
        .expect("accepted");
    let active = accepted.user.expect("user");
    assert_eq!(active.state, pb::UserState::Active as i32);
    assert_eq!(active.user_id, user.user_id);
    app.auth_as(&accepted.session_token)
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("the session works");
    app.login("new.agent@example.com", "the chosen password")
        .await;

    let again = accept(&app, &token, "another password!")
        .await
        .expect_err("used");
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(reason(&again), "INVITE_USED");
}

#[tokio::test]
async fn resending_kills_the_old_link() {
    let (app, sink) = app_with_smtp().await;
    let user = app
        .admin_users()
        .invite_user(invite_request("twice@example.com", "Twice"))
        .await
        .expect("invited")
        .into_inner()
        .user
        .expect("user");
    app.admin_users()
        .resend_invite(pb::ResendInviteRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("resent");
    let mails = sink.wait_for(2).await;
    let (old, new) = (invite_token(&mails[0]), invite_token(&mails[1]));
    assert_ne!(old, new);
    let status = accept(&app, &old, "a fine password")
        .await
        .expect_err("replaced");
    assert_eq!(reason(&status), "INVITE_REVOKED");
    accept(&app, &new, "a fine password")
        .await
        .expect("new link works");

    let status = app
        .admin_users()
        .resend_invite(pb::ResendInviteRequest {
            user_id: user.user_id,
        })
        .await
        .expect_err("already active");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "USER_NOT_INVITED");
}

#[tokio::test]
async fn revoking_removes_the_pending_user_and_the_link() {
    let (app, sink) = app_with_smtp().await;
    let user = app
        .admin_users()
        .invite_user(invite_request("gone@example.com", "Gone"))
        .await
        .expect("invited")
        .into_inner()
        .user
        .expect("user");
    app.admin_users()
        .revoke_invite(pb::RevokeInviteRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("revoked");
    let token = invite_token(&sink.wait_for(1).await[0]);
    let status = accept(&app, &token, "a fine password")
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVITE_REVOKED");
    let status = app.get_user(&user.user_id).await.expect_err("gone");
    assert_eq!(status.code(), Code::NotFound);
    // The email is free for a new invitation.
    app.admin_users()
        .invite_user(invite_request("gone@example.com", "Gone Again"))
        .await
        .expect("invited again");
}

#[tokio::test]
async fn expired_unknown_and_weak_acceptances_are_refused() {
    let (app, sink) = app_with_smtp().await;
    let user = app
        .admin_users()
        .invite_user(invite_request("late@example.com", "Late"))
        .await
        .expect("invited")
        .into_inner()
        .user
        .expect("user");
    let token = invite_token(&sink.wait_for(1).await[0]);

    let status = accept(&app, &token, "short").await.expect_err("weak");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "WEAK_PASSWORD");

    for garbage in ["", "ri_nope", &"x".repeat(5000)] {
        let status = accept(&app, garbage, "a fine password")
            .await
            .expect_err("unknown");
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(reason(&status), "INVALID_INVITE");
    }

    app.sql("UPDATE invites SET expires_at = created_at").await;
    let status = accept(&app, &token, "a fine password")
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "INVITE_EXPIRED");
    let still = app.get_user(&user.user_id).await.expect("still pending");
    assert_eq!(still.state, pb::UserState::Invited as i32);
}

#[tokio::test]
async fn inviting_a_taken_email_or_past_the_seat_limit_is_refused() {
    let (app, _sink) = app_with_smtp().await;
    let status = app
        .admin_users()
        .invite_user(invite_request("ADMIN@localhost", "Admin Again"))
        .await
        .expect_err("taken");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "EMAIL_TAKEN");

    app.update_org(
        pb::OrgSettings {
            seat_limit: 2,
            ..Default::default()
        },
        &["seat_limit"],
    )
    .await;
    app.admin_users()
        .invite_user(invite_request("seat@example.com", "Seat"))
        .await
        .expect("last seat");
    let status = app
        .admin_users()
        .invite_user(invite_request("over@example.com", "Over"))
        .await
        .expect_err("no seat");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(reason(&status), "SEAT_LIMIT_REACHED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invites_for_the_last_seat_admit_exactly_one() {
    let (app, _sink) = app_with_smtp().await;
    app.update_org(
        pb::OrgSettings {
            seat_limit: 2,
            ..Default::default()
        },
        &["seat_limit"],
    )
    .await;
    let attempts = (0..6).map(|i| {
        let mut users = app.admin_users();
        async move {
            users
                .invite_user(invite_request(&format!("race{i}@example.com"), "Racer"))
                .await
        }
    });
    let results = futures_join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(reason(status), "SEAT_LIMIT_REACHED");
    }
}

/// Runs the futures concurrently on the test's runtime.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn a_created_user_can_get_a_welcome_email_without_the_password() {
    let (app, sink) = app_with_smtp().await;
    let mut req = crate::helpers::create_request("welcome@example.com", "Welcome", &["agent"]);
    req.send_welcome_email = true;
    app.admin_users().create_user(req).await.expect("created");
    let mail = decoded(&sink.wait_for(1).await.remove(0));
    assert!(mail.contains("welcome@example.com"), "{mail}");
    assert!(
        mail.contains("https://roster.example.com/sign-in?org=acme"),
        "{mail}"
    );
    assert!(!mail.contains(crate::helpers::USER_PASSWORD), "{mail}");
}
