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

/// Invitations sent at once commit together; one that cannot (a taken
/// email, twice the same email, a repeated request id) is answered as if it
/// had come alone, and the others are unharmed: each invitee has their
/// user, their audit entry and a working link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_sent_together_are_each_answered_as_if_alone() {
    let (app, sink) = app_with_smtp().await;
    let mut requests: Vec<pb::InviteUserRequest> = (0..12)
        .map(|i| invite_request(&format!("batch{i}@example.com"), "Batch"))
        .collect();
    requests.push(invite_request("admin@localhost", "Taken"));
    requests.push(invite_request("twice@example.com", "Twice"));
    requests.push(invite_request("twice@example.com", "Twice"));
    for _ in 0..2 {
        let mut repeated = invite_request("repeated@example.com", "Repeated");
        repeated.request_id = "invite-repeated".into();
        requests.push(repeated);
    }
    let attempts = requests.into_iter().map(|request| {
        let mut users = app.admin_users();
        async move {
            users
                .invite_user(request)
                .await
                .map(|r| r.into_inner().user.expect("user"))
        }
    });
    let results = futures_join_all(attempts).await;

    let fresh: Vec<&pb::User> = results[..12]
        .iter()
        .map(|r| r.as_ref().expect("a fresh email is invited"))
        .collect();
    assert!(fresh.iter().all(|u| u.state() == pb::UserState::Invited));
    let taken = results[12].as_ref().expect_err("taken");
    assert_eq!(reason(taken), "EMAIL_TAKEN");
    let twice: Vec<_> = results[13..15].iter().collect();
    assert_eq!(twice.iter().filter(|r| r.is_ok()).count(), 1, "{twice:?}");
    let lost = twice
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("one lost");
    assert_eq!(reason(lost), "EMAIL_TAKEN");
    let repeated: Vec<&pb::User> = results[15..]
        .iter()
        .map(|r| r.as_ref().expect("a repeated request is answered"))
        .collect();
    assert_eq!(repeated[0].user_id, repeated[1].user_id);

    // 12 fresh, one of the pair, one for the repeated request.
    let mails = sink.wait_for(14).await;
    for user in &fresh {
        let audited = app
            .sql_strings(&format!(
                "SELECT action FROM audit_events WHERE target_user_id = '{}'",
                user.user_id
            ))
            .await;
        assert_eq!(audited, ["user.invite"], "{}", user.email);
    }
    let mail = mails
        .iter()
        .find(|m| m.contains("batch7@example.com"))
        .expect("batch7's invitation");
    let accepted = accept(&app, &invite_token(mail), "the chosen password")
        .await
        .expect("the link works");
    assert_eq!(accepted.user.expect("user").email, "batch7@example.com");
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
