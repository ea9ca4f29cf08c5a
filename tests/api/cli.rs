//! `rosterctl` end to end: the real binary against the real server, with a
//! config dir of its own per test so no session leaks between tests or from
//! the developer's machine.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ORG, TestApp, spawn_app};

/// What one run of `rosterctl` left behind.
pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// `rosterctl` pointed at one test server and one private config dir.
pub(crate) struct Ctl {
    server: String,
    config_dir: tempfile::TempDir,
}

impl Ctl {
    fn new(app: &TestApp) -> Self {
        Self::at(format!("http://{}", app.addr))
    }

    /// `rosterctl` pointed at `server` (an `https://` URL, say).
    pub(crate) fn at(server: String) -> Self {
        Self {
            server,
            config_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Runs `rosterctl --server … ARGS` with `stdin` as its input. The
    /// server lives on this test's runtime, so the blocking wait for the
    /// child happens on a thread of its own.
    pub(crate) async fn run(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, stdin, &[]).await
    }

    /// [`Ctl::run`] with more environment.
    pub(crate) async fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rosterctl"));
        command
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .env("ROSTER_CONFIG_DIR", self.config_dir.path())
            .env_remove("ROSTER_SERVER")
            .env_remove("ROSTER_PLATFORM_KEY")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("rosterctl starts");
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // A command that reads no input may exit before we write it.
            if let Err(e) = pipe.write_all(stdin.as_bytes())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                panic!("write stdin: {e}");
            }
            drop(pipe);
            let output = child.wait_with_output().expect("rosterctl finishes");
            Run {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        })
        .await
        .expect("rosterctl thread")
    }

    /// Starts `rosterctl --server … ARGS` and leaves it running; its stdout
    /// lines arrive on a channel, read by a thread of their own.
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rosterctl"))
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .env("ROSTER_CONFIG_DIR", self.config_dir.path())
            .env_remove("ROSTER_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rosterctl starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// A sign-in that cannot get through (whatever the credentials); its
    /// stderr.
    pub(crate) async fn failed_login(&self) -> String {
        let run = self
            .run(
                &[
                    "login",
                    "--org",
                    ORG,
                    "--login",
                    "a@b.c",
                    "--password-stdin",
                ],
                "x\n",
            )
            .await;
        assert!(!run.success, "{}", run.stdout);
        run.stderr
    }

    /// Signs the bootstrap admin in and checks that it worked.
    async fn login_admin(&self) {
        let run = self
            .run(
                &[
                    "login",
                    "--org",
                    ORG,
                    "--login",
                    ADMIN_EMAIL,
                    "--password-stdin",
                ],
                &format!("{ADMIN_PASSWORD}\n"),
            )
            .await;
        assert!(run.success, "login failed: {}", run.stderr);
        assert!(run.stdout.contains(ADMIN_EMAIL), "{}", run.stdout);
    }
}

/// A `rosterctl` that runs until stopped, such as `presence watch`. It is
/// killed when dropped, so a failed test leaves no process behind.
struct Running {
    child: Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Running {
    /// Reads stdout lines, each a JSON document, up to and including the
    /// first one `wanted` accepts, and returns them. Fails with the
    /// command's stderr if it ends first or nothing fits within 30 s.
    async fn json_lines_until(&mut self, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let line = self.next_line(&format!("{seen:?}")).await;
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let done = wanted(&value);
            seen.push(value);
            if done {
                return seen;
            }
        }
    }

    /// Reads stdout lines up to the first one `wanted` accepts.
    async fn line_until(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let mut seen = Vec::new();
        loop {
            let line = self.next_line(&format!("{seen:?}")).await;
            if wanted(&line) {
                return line;
            }
            seen.push(line);
        }
    }

    /// The next stdout line; fails with the command's stderr if it ends
    /// first or writes nothing within 30 s (after `seen`).
    async fn next_line(&mut self, seen: &str) -> String {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.recv()).await;
        match line {
            Ok(Some(line)) => line,
            _ => {
                let stderr = self.stop();
                panic!(
                    "no wanted line ({}) after {seen}; stderr: {stderr}",
                    if line.is_err() {
                        "timed out"
                    } else {
                        "stdout ended"
                    }
                );
            }
        }
    }

    /// Kills the command and returns what it wrote to stderr.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        stderr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn login_then_whoami_shows_the_admin_and_their_permissions() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let session = ctl.config_dir.path().join("roster").join("session.json");
    assert!(session.exists(), "no session file at {}", session.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&session)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "session file mode {mode:o}");
    }

    let run = ctl.run(&["whoami", "--json"], "").await;
    assert!(run.success, "whoami failed: {}", run.stderr);
    let me = run.json();
    assert_eq!(me["org_slug"], ORG);
    assert_eq!(me["user"]["email"], ADMIN_EMAIL);
    assert_eq!(me["user"]["state"], "USER_STATE_ACTIVE");
    let permissions = me["permissions"].as_array().expect("permissions array");
    assert!(
        permissions.iter().any(|p| p == "users.manage"),
        "{permissions:?}"
    );
}

#[tokio::test]
async fn users_create_list_and_get() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let created = ctl
        .run(
            &[
                "users",
                "create",
                "--email",
                "carol@example.com",
                "--name",
                "Carol Agent",
                "--role",
                "agent",
                "--max-chats",
                "4",
                "--password-stdin",
                "--json",
            ],
            "a long enough password\n",
        )
        .await;
    assert!(created.success, "create failed: {}", created.stderr);
    let user = created.json();
    let user_id = user["user_id"].as_str().expect("user_id").to_owned();
    assert_eq!(user["email"], "carol@example.com");
    assert_eq!(user["max_chats"], 4);
    assert!(
        user["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let listed = ctl.run(&["users", "list", "--json", "--all"], "").await;
    assert!(listed.success, "list failed: {}", listed.stderr);
    let users = listed.json();
    let emails: Vec<&str> = users
        .as_array()
        .expect("array of users")
        .iter()
        .filter_map(|u| u["email"].as_str())
        .collect();
    assert!(emails.contains(&"carol@example.com"), "{emails:?}");
    assert!(emails.contains(&ADMIN_EMAIL), "{emails:?}");

    // The table shows the same user, one row per user under the header.
    let table = ctl.run(&["users", "list", "--query", "carol"], "").await;
    assert!(table.success, "list failed: {}", table.stderr);
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    assert!(table.stdout.contains("Carol Agent"), "{}", table.stdout);
    assert!(!table.stdout.contains(ADMIN_EMAIL), "{}", table.stdout);

    let got = ctl.run(&["users", "get", &user_id, "--json"], "").await;
    assert!(got.success, "get failed: {}", got.stderr);
    assert_eq!(got.json()["user_id"], user_id.as_str());
}

#[tokio::test]
async fn users_export_writes_the_csv_to_stdout() {
    let app = spawn_app().await;
    app.create_user("eve@example.com", "=Eve Evil", &["agent"])
        .await;
    app.create_user("sam@example.com", "Sam Super", &["supervisor"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let all = ctl.run(&["users", "export"], "").await;
    assert!(all.success, "export failed: {}", all.stderr);
    let mut lines = all.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "first_name,last_name,login_id,email,roles,teams,user_id,display_name,state,\
             locked,public_name,max_chats,created_at,last_login_at"
        )
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3, "{}", all.stdout);
    assert!(
        rows[0].starts_with("'=Eve,Evil,,eve@example.com,agent,,"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("Administrator,,,admin@localhost,admin,,"),
        "{}",
        rows[1]
    );

    let filtered = ctl
        .run(
            &[
                "users",
                "export",
                "--role",
                "supervisor",
                "--state",
                "active",
                "--locked",
                "false",
                "--presence",
                "offline",
                "--query",
                "sam",
            ],
            "",
        )
        .await;
    assert!(filtered.success, "export failed: {}", filtered.stderr);
    let rows: Vec<&str> = filtered.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{}", filtered.stdout);
    assert!(
        rows[0].starts_with("Sam,Super,,sam@example.com,supervisor,"),
        "{}",
        rows[0]
    );

    let bad = ctl
        .run(&["users", "export", "--role", "Not a role!"], "")
        .await;
    assert!(!bad.success);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert!(
        bad.stderr.starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("role: "), "{}", bad.stderr);
}

#[tokio::test]
async fn users_list_without_all_prints_the_next_page_token_on_stderr() {
    let app = spawn_app().await;
    app.create_user("dave@example.com", "Dave", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let run = ctl
        .run(&["users", "list", "--json", "--page-size", "1"], "")
        .await;
    assert!(run.success, "list failed: {}", run.stderr);
    assert_eq!(run.json().as_array().map(Vec::len), Some(1));
    assert!(run.stderr.contains("next page token"), "{}", run.stderr);
}

#[tokio::test]
async fn invalid_input_shows_code_reason_and_field_violations() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let run = ctl
        .run(
            &[
                "users",
                "create",
                "--email",
                "not-an-email",
                "--name",
                "X",
                "--password-stdin",
            ],
            "a long enough password\n",
        )
        .await;
    assert!(!run.success);
    assert!(
        run.stderr.starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("reason: "), "{}", run.stderr);
    assert!(run.stderr.contains("user.email: "), "{}", run.stderr);
}

#[tokio::test]
async fn wrong_password_fails_with_invalid_credentials() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);

    let run = ctl
        .run(
            &[
                "login",
                "--org",
                ORG,
                "--login",
                ADMIN_EMAIL,
                "--password-stdin",
            ],
            "not the password\n",
        )
        .await;
    assert!(!run.success);
    assert!(run.stderr.contains("UNAUTHENTICATED"), "{}", run.stderr);
    assert!(run.stderr.contains("invalid credentials"), "{}", run.stderr);
    assert!(
        !ctl.config_dir
            .path()
            .join("roster")
            .join("session.json")
            .exists()
    );
}

#[tokio::test]
async fn commands_need_a_session() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);

    let run = ctl.run(&["whoami"], "").await;
    assert!(!run.success);
    assert!(run.stderr.contains("not signed in"), "{}", run.stderr);
    assert!(run.stderr.contains("rosterctl login"), "{}", run.stderr);
}

#[tokio::test]
async fn logout_ends_the_session_and_deletes_the_file() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let path = ctl.config_dir.path().join("roster").join("session.json");
    let session: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("session file"))
            .expect("session JSON");
    let token = session["token"].as_str().expect("token").to_owned();

    let run = ctl.run(&["logout"], "").await;
    assert!(run.success, "logout failed: {}", run.stderr);
    assert!(!path.exists());
    let refused = app
        .auth_as(&token)
        .who_am_i(roster::api::pb::WhoAmIRequest {})
        .await
        .expect_err("the token no longer works");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let run = ctl.run(&["whoami"], "").await;
    assert!(run.stderr.contains("not signed in"), "{}", run.stderr);
}

/// The id of the user a `--json` run printed, checking that it succeeded.
fn user_id_of(run: &Run) -> String {
    assert!(run.success, "command failed: {}", run.stderr);
    run.json()["user_id"]
        .as_str()
        .expect("user_id in the output")
        .to_owned()
}

#[tokio::test]
async fn users_invite_resend_and_revoke() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let invited = ctl
        .run(
            &[
                "users",
                "invite",
                "--email",
                "ana@example.com",
                "--name",
                "Ana Lima",
                "--role",
                "agent",
                "--role",
                "supervisor",
                "--max-chats",
                "3",
                "--json",
            ],
            "",
        )
        .await;
    assert!(invited.success, "invite failed: {}", invited.stderr);
    let view = invited.json();
    assert_eq!(view["user"]["email"], "ana@example.com");
    assert_eq!(view["user"]["state"], "USER_STATE_INVITED");
    assert_eq!(
        view["user"]["roles"],
        serde_json::json!(["agent", "supervisor"])
    );
    assert_eq!(view["user"]["max_chats"], 3);
    let first_expiry = view["invite_expires_at"]
        .as_str()
        .expect("invite_expires_at")
        .to_owned();
    assert!(first_expiry.ends_with('Z'), "{first_expiry}");
    let user_id = view["user"]["user_id"]
        .as_str()
        .expect("user_id")
        .to_owned();

    // The table says when the link expires.
    let resent = ctl.run(&["users", "resend-invite", &user_id], "").await;
    assert!(resent.success, "resend failed: {}", resent.stderr);
    assert!(
        resent.stdout.contains("INVITE EXPIRES"),
        "{}",
        resent.stdout
    );
    assert!(resent.stdout.contains("INVITED"), "{}", resent.stdout);

    let revoked = ctl
        .run(&["users", "revoke-invite", &user_id, "--yes", "--json"], "")
        .await;
    assert!(revoked.success, "revoke failed: {}", revoked.stderr);
    assert_eq!(revoked.json()["revoked"], true);
    let gone = app.get_user(&user_id).await.expect_err("the user is gone");
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Revoking again is the server's NOT_FOUND, reported as usual.
    let again = ctl
        .run(&["users", "revoke-invite", &user_id, "--yes"], "")
        .await;
    assert!(!again.success);
    assert!(
        again.stderr.starts_with("error: NOT_FOUND: "),
        "{}",
        again.stderr
    );
}

#[tokio::test]
async fn users_update_changes_exactly_the_fields_given() {
    let app = spawn_app().await;
    let user = app
        .create_user("bruno@example.com", "Bruno", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let updated = ctl
        .run(
            &[
                "users",
                "update",
                &user.user_id,
                "--name",
                "Bruno Souza",
                "--job-title",
                "Team lead",
                "--role",
                "supervisor",
                "--max-chats",
                "7",
                "--login-with",
                "email",
                "--can-view-colleagues-chats",
                "true",
                "--json",
            ],
            "",
        )
        .await;
    assert!(updated.success, "update failed: {}", updated.stderr);
    let json = updated.json();
    assert_eq!(json["display_name"], "Bruno Souza");
    assert_eq!(json["job_title"], "Team lead");
    assert_eq!(json["roles"], serde_json::json!(["supervisor"]));
    assert_eq!(json["max_chats"], 7);
    assert_eq!(json["login_with"], "LOGIN_WITH_EMAIL");
    assert_eq!(json["can_view_colleagues_chats"], true);
    // Untouched fields stay as they were.
    assert_eq!(json["email"], "bruno@example.com");
    assert_eq!(json["public_name"], user.public_name.as_str());
    assert_ne!(json["etag"], user.etag.as_str());

    // Back to the org default, guarded by the etag just read.
    let etag = json["etag"].as_str().expect("etag").to_owned();
    let cleared = ctl
        .run(
            &[
                "users",
                "update",
                &user.user_id,
                "--clear-max-chats",
                "--etag",
                &etag,
                "--json",
            ],
            "",
        )
        .await;
    assert!(cleared.success, "update failed: {}", cleared.stderr);
    assert_eq!(cleared.json()["max_chats"], Value::Null);
    assert_eq!(cleared.json()["display_name"], "Bruno Souza");

    // That etag is stale now.
    let stale = ctl
        .run(
            &[
                "users",
                "update",
                &user.user_id,
                "--name",
                "X",
                "--etag",
                &etag,
            ],
            "",
        )
        .await;
    assert!(!stale.success);
    assert!(
        stale.stderr.starts_with("error: ABORTED: "),
        "{}",
        stale.stderr
    );

    // No field flag: refused locally, with a clear message.
    let nothing = ctl.run(&["users", "update", &user.user_id], "").await;
    assert!(!nothing.success);
    assert!(
        nothing.stderr.starts_with("error: nothing to change"),
        "{}",
        nothing.stderr
    );
    let after = app.get_user(&user.user_id).await.expect("user");
    assert_eq!(after.display_name, "Bruno Souza");
}

#[tokio::test]
async fn users_suspend_reactivate_and_delete() {
    let app = spawn_app().await;
    let user = app
        .create_user("carla@example.com", "Carla", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let suspended = ctl
        .run(
            &[
                "users",
                "suspend",
                &user.user_id,
                "--reason",
                "On leave until March",
                "--yes",
                "--json",
            ],
            "",
        )
        .await;
    assert!(suspended.success, "suspend failed: {}", suspended.stderr);
    assert_eq!(suspended.json()["state"], "USER_STATE_SUSPENDED");
    assert_eq!(suspended.json()["suspend_reason"], "On leave until March");

    // The table shows the reason too.
    let shown = ctl.run(&["users", "get", &user.user_id], "").await;
    assert!(
        shown.stdout.contains("On leave until March"),
        "{}",
        shown.stdout
    );

    let reactivated = ctl
        .run(&["users", "reactivate", &user.user_id, "--json"], "")
        .await;
    assert_eq!(user_id_of(&reactivated), user.user_id);
    assert_eq!(reactivated.json()["state"], "USER_STATE_ACTIVE");

    let deleted = ctl
        .run(&["users", "delete", &user.user_id, "--yes"], "")
        .await;
    assert!(deleted.success, "delete failed: {}", deleted.stderr);
    assert!(
        deleted.stdout.starts_with("Deleted user"),
        "{}",
        deleted.stdout
    );
    let gone = app.get_user(&user.user_id).await.expect_err("deleted");
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // The tombstone still names her.
    let tombstones = ctl
        .run(&["users", "deleted", "--id", &user.user_id, "--json"], "")
        .await;
    assert!(tombstones.success, "{}", tombstones.stderr);
    let view = tombstones.json();
    assert_eq!(view[0]["user_id"], user.user_id.as_str());
    assert_eq!(view[0]["display_name"], "Carla");
    assert_eq!(view[0]["email"], "carla@example.com");
    let table = ctl.run(&["users", "deleted"], "").await;
    assert!(
        table.stdout.contains("DELETED AT") && table.stdout.contains("carla@example.com"),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn users_unlock_clears_the_lock() {
    let app = spawn_app().await;
    let user = app
        .create_user("dina@example.com", "Dina", &["agent"])
        .await;
    for _ in 0..5 {
        app.try_login("dina@example.com", "not the password")
            .await
            .expect_err("wrong password");
    }
    assert!(app.get_user(&user.user_id).await.expect("user").locked);
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let run = ctl
        .run(&["users", "unlock", &user.user_id, "--json"], "")
        .await;
    assert_eq!(user_id_of(&run), user.user_id);
    assert_eq!(run.json()["locked"], false);
}

#[tokio::test]
async fn destructive_commands_refuse_without_yes_when_stdin_is_not_a_terminal() {
    let app = spawn_app().await;
    let user = app.create_user("eva@example.com", "Eva", &["agent"]).await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    // Even a "y" on a piped stdin is not a confirmation.
    for args in [
        ["users", "delete", user.user_id.as_str()],
        ["users", "suspend", user.user_id.as_str()],
        ["users", "revoke-invite", user.user_id.as_str()],
    ] {
        let run = ctl.run(&args, "y\n").await;
        assert!(!run.success, "{args:?} went ahead");
        assert!(
            run.stderr.starts_with("error: refusing to "),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("--yes"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
    let still = app.get_user(&user.user_id).await.expect("still there");
    assert_eq!(still.state, roster::api::pb::UserState::Active as i32);
}

/// A 1×1 transparent PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[tokio::test]
async fn users_set_avatar_then_get_avatar_round_trip() {
    let app = spawn_app().await;
    let user = app
        .create_user("fabio@example.com", "Fabio", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let image = dir.path().join("face.png");
    std::fs::write(&image, PNG).expect("write png");

    let set = ctl
        .run(
            &[
                "users",
                "set-avatar",
                &user.user_id,
                image.to_str().expect("utf-8 path"),
                "--json",
            ],
            "",
        )
        .await;
    assert_eq!(user_id_of(&set), user.user_id);
    assert_eq!(set.json()["has_avatar"], true);

    let saved = dir.path().join("saved.png");
    let got = ctl
        .run(
            &[
                "users",
                "get-avatar",
                &user.user_id,
                "--output",
                saved.to_str().expect("utf-8 path"),
                "--json",
            ],
            "",
        )
        .await;
    assert!(got.success, "get-avatar failed: {}", got.stderr);
    assert_eq!(got.json()["content_type"], "image/png");
    assert_eq!(got.json()["size_bytes"], PNG.len());
    assert_eq!(std::fs::read(&saved).expect("saved file"), PNG);

    // Not an image: the server's reason comes through.
    let text = dir.path().join("face.png.txt");
    std::fs::write(&text, "hello").expect("write text");
    let refused = ctl
        .run(
            &[
                "users",
                "set-avatar",
                &user.user_id,
                text.to_str().expect("utf-8 path"),
            ],
            "",
        )
        .await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("UNSUPPORTED_IMAGE"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn teams_create_list_update_and_delete() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let created = ctl
        .run(
            &[
                "teams",
                "create",
                "--name",
                "Support",
                "--description",
                "First line",
                "--json",
            ],
            "",
        )
        .await;
    assert!(created.success, "create failed: {}", created.stderr);
    let team_id = created.json()["team_id"]
        .as_str()
        .expect("team_id")
        .to_owned();
    assert_eq!(created.json()["name"], "Support");

    let listed = ctl.run(&["teams", "list", "--json", "--all"], "").await;
    assert!(listed.success, "list failed: {}", listed.stderr);
    let names: Vec<String> = listed
        .json()
        .as_array()
        .expect("array of teams")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"Support".to_owned()), "{names:?}");
    let table = ctl.run(&["teams", "list"], "").await;
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    assert!(table.stdout.contains("First line"), "{}", table.stdout);

    let updated = ctl
        .run(
            &[
                "teams",
                "update",
                &team_id,
                "--name",
                "Support EMEA",
                "--json",
            ],
            "",
        )
        .await;
    assert!(updated.success, "update failed: {}", updated.stderr);
    assert_eq!(updated.json()["name"], "Support EMEA");
    assert_eq!(updated.json()["description"], "First line");

    // A member, so the team is in use.
    let member = app.create_user("gil@example.com", "Gil", &["agent"]).await;
    let joined = ctl
        .run(
            &["users", "update", &member.user_id, "--team", &team_id],
            "",
        )
        .await;
    assert!(joined.success, "join failed: {}", joined.stderr);

    let refused = ctl.run(&["teams", "delete", &team_id], "y\n").await;
    assert!(!refused.success);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);

    // In use: refused with the member count, unless --detach.
    let in_use = ctl.run(&["teams", "delete", &team_id, "--yes"], "").await;
    assert!(!in_use.success);
    assert!(
        in_use.stderr.starts_with("error: FAILED_PRECONDITION: "),
        "{}",
        in_use.stderr
    );
    assert!(in_use.stderr.contains("TEAM_IN_USE"), "{}", in_use.stderr);
    assert!(in_use.stderr.contains("members: 1"), "{}", in_use.stderr);

    let deleted = ctl
        .run(&["teams", "delete", &team_id, "--yes", "--detach"], "")
        .await;
    assert!(deleted.success, "delete failed: {}", deleted.stderr);
    let listed = ctl.run(&["teams", "list", "--json", "--all"], "").await;
    assert!(!listed.stdout.contains(&team_id), "{}", listed.stdout);
    let member = app.get_user(&member.user_id).await.expect("member stays");
    assert!(member.team_ids.is_empty(), "{:?}", member.team_ids);
}

#[tokio::test]
async fn roles_create_update_and_delete() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let created = ctl
        .run(
            &[
                "roles",
                "create",
                "--name",
                "compliance",
                "--permission",
                "users.read",
                "--permission",
                "audit.read",
                "--json",
            ],
            "",
        )
        .await;
    assert!(created.success, "create failed: {}", created.stderr);
    assert_eq!(created.json()["built_in"], false);

    let listed = ctl.run(&["roles", "list", "--json", "--all"], "").await;
    assert!(listed.success, "list failed: {}", listed.stderr);
    let roles = listed.json();
    let roles = roles.as_array().expect("array of roles");
    let admin = roles
        .iter()
        .find(|r| r["name"] == "admin")
        .expect("built-in admin role");
    assert_eq!(admin["built_in"], true);
    assert!(roles.iter().any(|r| r["name"] == "compliance"));

    let updated = ctl
        .run(
            &[
                "roles",
                "update",
                "compliance",
                "--permission",
                "reports.read",
                "--json",
            ],
            "",
        )
        .await;
    assert!(updated.success, "update failed: {}", updated.stderr);
    assert_eq!(
        updated.json()["permissions"],
        serde_json::json!(["reports.read"])
    );

    // Built-in roles cannot change: the server's reason comes through.
    let builtin = ctl
        .run(&["roles", "update", "agent", "--description", "x"], "")
        .await;
    assert!(!builtin.success);
    assert!(
        builtin.stderr.contains("BUILTIN_ROLE"),
        "{}",
        builtin.stderr
    );

    let deleted = ctl
        .run(&["roles", "delete", "compliance", "--yes"], "")
        .await;
    assert!(deleted.success, "delete failed: {}", deleted.stderr);
    let listed = ctl.run(&["roles", "list", "--json", "--all"], "").await;
    assert!(!listed.stdout.contains("compliance"), "{}", listed.stdout);
}

#[tokio::test]
async fn org_settings_get_and_update() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let got = ctl.run(&["org", "settings", "get", "--json"], "").await;
    assert!(got.success, "get failed: {}", got.stderr);
    assert_eq!(got.json()["slug"], ORG);
    let table = ctl.run(&["org", "settings", "get"], "").await;
    assert!(table.stdout.contains("SEAT LIMIT"), "{}", table.stdout);

    let updated = ctl
        .run(
            &[
                "org",
                "settings",
                "update",
                "--seat-limit",
                "50",
                "--invite-lifetime",
                "3d",
                "--login-with",
                "email",
                "--json",
            ],
            "",
        )
        .await;
    assert!(updated.success, "update failed: {}", updated.stderr);
    let settings = updated.json();
    assert_eq!(settings["seat_limit"], 50);
    assert_eq!(settings["invite_lifetime"], "259200s");
    assert_eq!(settings["login_with"], "LOGIN_WITH_EMAIL");
    // Untouched settings stay.
    assert_eq!(settings["session_lifetime"], got.json()["session_lifetime"]);

    let nothing = ctl.run(&["org", "settings", "update"], "").await;
    assert!(!nothing.success);
    assert!(
        nothing.stderr.starts_with("error: nothing to change"),
        "{}",
        nothing.stderr
    );
    let bad = ctl
        .run(
            &["org", "settings", "update", "--invite-lifetime", "soon"],
            "",
        )
        .await;
    assert!(!bad.success);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
}

#[tokio::test]
async fn audit_list_shows_the_actions_newest_first() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let invited = ctl
        .run(
            &[
                "users",
                "invite",
                "--email",
                "hana@example.com",
                "--name",
                "Hana",
                "--json",
            ],
            "",
        )
        .await;
    assert!(invited.success, "invite failed: {}", invited.stderr);
    let user_id = invited.json()["user"]["user_id"]
        .as_str()
        .expect("user_id")
        .to_owned();
    let created = ctl
        .run(&["teams", "create", "--name", "Billing", "--json"], "")
        .await;
    assert!(created.success, "create failed: {}", created.stderr);
    let agent = app.create_user("ivo@example.com", "Ivo", &["agent"]).await;
    let suspended = ctl
        .run(&["users", "suspend", &agent.user_id, "--yes"], "")
        .await;
    assert!(suspended.success, "suspend failed: {}", suspended.stderr);

    let run = ctl.run(&["audit", "list", "--json", "--all"], "").await;
    assert!(run.success, "audit list failed: {}", run.stderr);
    let events = run.json();
    let actions: Vec<&str> = events
        .as_array()
        .expect("array of events")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    let position = |action: &str| {
        actions
            .iter()
            .position(|a| *a == action)
            .unwrap_or_else(|| panic!("no {action} in {actions:?}"))
    };
    // Newest first.
    assert!(
        position("user.suspend") < position("team.create"),
        "{actions:?}"
    );
    assert!(
        position("team.create") < position("user.invite"),
        "{actions:?}"
    );

    // Filters: the events about the invited user only.
    let run = ctl
        .run(&["audit", "list", "--json", "--target", &user_id], "")
        .await;
    assert!(run.success, "audit list failed: {}", run.stderr);
    let events = run.json();
    let events = events.as_array().expect("array of events");
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["target_user_id"] == user_id.as_str()),
        "{events:?}"
    );

    let run = ctl
        .run(
            &[
                "audit",
                "list",
                "--action",
                "team.create",
                "--since",
                "2000-01-01T00:00:00Z",
            ],
            "",
        )
        .await;
    assert!(run.success, "audit list failed: {}", run.stderr);
    assert!(run.stdout.starts_with("TIME"), "{}", run.stdout);
    assert!(run.stdout.contains("team.create"), "{}", run.stdout);
    assert!(!run.stdout.contains("user.invite"), "{}", run.stdout);
}

/// Signs `login` in through rosterctl with `stdin` (password lines).
async fn login_as(ctl: &Ctl, login: &str, stdin: &str) -> Run {
    ctl.run(
        &[
            "login",
            "--org",
            ORG,
            "--login",
            login,
            "--password-stdin",
            "--json",
        ],
        stdin,
    )
    .await
}

/// The token of the session rosterctl saved.
fn saved_token(ctl: &Ctl) -> String {
    let path = ctl.config_dir.path().join("roster").join("session.json");
    let session: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("session file"))
            .expect("session JSON");
    session["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn reset_password_then_login_prompts_for_a_new_one_and_whoami_works() {
    let app = spawn_app().await;
    let user = app
        .create_user("flow@example.com", "Flow", &["agent"])
        .await;
    let admin = Ctl::new(&app);
    admin.login_admin().await;
    let reset = admin
        .run(
            &[
                "users",
                "reset-password",
                &user.user_id,
                "--password-stdin",
                "--json",
            ],
            "a temporary password\n",
        )
        .await;
    assert_eq!(user_id_of(&reset), user.user_id);
    assert_eq!(reset.json()["password_change_required"], true);

    let agent = Ctl::new(&app);
    let login = login_as(
        &agent,
        "flow@example.com",
        "a temporary password\nmy very own passphrase\nmy very own passphrase\n",
    )
    .await;
    assert!(login.success, "login failed: {}", login.stderr);
    assert_eq!(login.json()["password_changed"], true);
    assert_eq!(login.json()["password_change_required"], false);

    let me = agent.run(&["whoami", "--json"], "").await;
    assert!(me.success, "whoami failed: {}", me.stderr);
    assert_eq!(me.json()["user"]["email"], "flow@example.com");
    assert_eq!(me.json()["password_change_required"], false);
    // The saved session is the new one, free of the restriction.
    let own = agent
        .run(&["users", "get", &user.user_id, "--json"], "")
        .await;
    assert_eq!(user_id_of(&own), user.user_id);
    app.login("flow@example.com", "my very own passphrase")
        .await;
    app.try_login("flow@example.com", "a temporary password")
        .await
        .expect_err("the temporary password is gone");
}

#[tokio::test]
async fn login_without_new_password_lines_keeps_the_restricted_session() {
    let app = spawn_app().await;
    let user = app
        .create_user("later@example.com", "Later", &["agent"])
        .await;
    app.admin_users()
        .force_password_change(roster::api::pb::ForcePasswordChangeRequest {
            user_id: user.user_id.clone(),
        })
        .await
        .expect("forced");
    let ctl = Ctl::new(&app);
    let login = login_as(&ctl, "later@example.com", "a long enough password\n").await;
    assert!(login.success, "login failed: {}", login.stderr);
    assert_eq!(login.json()["password_change_required"], true);
    assert_eq!(login.json()["password_changed"], false);
    let blocked = ctl.run(&["users", "get", &user.user_id], "").await;
    assert!(!blocked.success);
    assert!(
        blocked.stderr.contains("PASSWORD_CHANGE_REQUIRED"),
        "{}",
        blocked.stderr
    );

    let before = saved_token(&ctl);
    let run = ctl
        .run(
            &["passwd", "--password-stdin"],
            "a long enough password\nanother fine passphrase\n",
        )
        .await;
    assert!(run.success, "passwd failed: {}", run.stderr);
    assert!(run.stdout.contains("Password changed"), "{}", run.stdout);
    assert_ne!(saved_token(&ctl), before, "the new session is saved");
    let me = ctl.run(&["whoami", "--json"], "").await;
    assert!(me.success, "whoami failed: {}", me.stderr);
    assert_eq!(me.json()["password_change_required"], false);
}

#[tokio::test]
async fn passwd_refuses_a_wrong_current_password_and_keeps_the_session() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let before = saved_token(&ctl);
    let run = ctl
        .run(
            &["passwd", "--password-stdin"],
            "not the password\nanother fine passphrase\n",
        )
        .await;
    assert!(!run.success);
    assert!(
        run.stderr.starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("WRONG_PASSWORD"), "{}", run.stderr);
    assert!(run.stderr.contains("current_password"), "{}", run.stderr);
    assert_eq!(saved_token(&ctl), before);
    let me = ctl.run(&["whoami"], "").await;
    assert!(me.success, "whoami failed: {}", me.stderr);
}

#[tokio::test]
async fn users_force_password_change_and_reset_without_change_required() {
    let app = spawn_app().await;
    let user = app.create_user("fpc@example.com", "Eff", &["agent"]).await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let forced = ctl
        .run(
            &["users", "force-password-change", &user.user_id, "--json"],
            "",
        )
        .await;
    assert_eq!(user_id_of(&forced), user.user_id);
    assert_eq!(forced.json()["password_change_required"], true);

    let reset = ctl
        .run(
            &[
                "users",
                "reset-password",
                &user.user_id,
                "--password-stdin",
                "--no-change-required",
                "--json",
            ],
            "set by the admin\n",
        )
        .await;
    assert_eq!(user_id_of(&reset), user.user_id);
    assert_eq!(reset.json()["password_change_required"], false);
    let login = app.login("fpc@example.com", "set by the admin").await;
    assert!(!login.password_change_required);

    let weak = ctl
        .run(
            &["users", "reset-password", &user.user_id, "--password-stdin"],
            "password\n",
        )
        .await;
    assert!(!weak.success);
    assert!(weak.stderr.contains("WEAK_PASSWORD"), "{}", weak.stderr);
    assert!(weak.stderr.contains("new_password"), "{}", weak.stderr);
}

#[tokio::test]
async fn keys_create_shows_the_secret_once_then_list_and_revoke() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;

    let created = ctl
        .run(
            &[
                "keys",
                "create",
                "--name",
                "router",
                "--scope",
                "users.read",
                "--scope",
                "presence.read",
            ],
            "",
        )
        .await;
    assert!(created.success, "{}", created.stderr);
    assert!(
        created.stderr.contains("will not be shown again"),
        "{}",
        created.stderr
    );
    let secret = created
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("SECRET"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no SECRET line: {}", created.stdout))
        .to_owned();
    assert!(secret.starts_with("rk_"), "{secret}");
    assert!(
        !created.stderr.contains(&secret),
        "the secret goes to stdout only"
    );
    // The secret is a working bearer token with exactly its scopes.
    app.users_as(&secret)
        .list_users(roster::api::pb::ListUsersRequest::default())
        .await
        .expect("users.read lists users");

    // --json, with a request id; a retry returns the same key, no secret.
    let args = [
        "keys",
        "create",
        "--name",
        "exporter",
        "--scope",
        "users.read",
        "--request-id",
        "exporter-1",
        "--json",
    ];
    let first = ctl.run(&args, "").await;
    assert!(first.success, "{}", first.stderr);
    let first = first.json();
    assert!(first["secret"].as_str().expect("secret").starts_with("rk_"));
    assert_eq!(
        first["api_key"]["scopes"],
        serde_json::json!(["users.read"])
    );
    let retry = ctl.run(&args, "").await;
    assert!(retry.success, "{}", retry.stderr);
    assert!(
        retry.stderr.contains("cannot be shown again"),
        "{}",
        retry.stderr
    );
    let retry_json = retry.json();
    assert_eq!(retry_json["secret"], "");
    assert_eq!(
        retry_json["api_key"]["api_key_id"],
        first["api_key"]["api_key_id"]
    );

    let listed = ctl.run(&["keys", "list", "--json"], "").await;
    assert!(listed.success, "{}", listed.stderr);
    let keys = listed.json();
    let keys = keys.as_array().expect("array");
    let names: Vec<_> = keys
        .iter()
        .map(|k| k["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["router", "exporter"]);
    let router = keys[0]["api_key_id"].as_str().expect("id").to_owned();
    assert!(keys.iter().all(|k| k.get("secret").is_none()));
    let table = ctl.run(&["keys", "list"], "").await;
    assert!(table.success, "{}", table.stderr);
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    assert!(table.stdout.contains("router"), "{}", table.stdout);
    assert!(!table.stdout.contains(&secret), "{}", table.stdout);

    // Revoking asks for confirmation; a piped "y" is not one.
    let refused = ctl.run(&["keys", "revoke", &router], "y\n").await;
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .starts_with("error: refusing to revoke API key"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    app.users_as(&secret)
        .list_users(roster::api::pb::ListUsersRequest::default())
        .await
        .expect("the key still works");

    let revoked = ctl.run(&["keys", "revoke", &router, "--yes"], "").await;
    assert!(revoked.success, "{}", revoked.stderr);
    assert!(
        revoked.stdout.contains("Revoked API key router"),
        "{}",
        revoked.stdout
    );
    let status = app
        .users_as(&secret)
        .list_users(roster::api::pb::ListUsersRequest::default())
        .await
        .expect_err("a revoked key fails at once");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    let live = ctl.run(&["keys", "list", "--json"], "").await.json();
    assert_eq!(live.as_array().expect("array").len(), 1);
    let all = ctl
        .run(&["keys", "list", "--show-revoked", "--all", "--json"], "")
        .await
        .json();
    let all = all.as_array().expect("array");
    assert_eq!(all.len(), 2);
    assert!(all[0]["revoked_at"].is_string(), "{all:?}");
    assert!(all[1]["revoked_at"].is_null(), "{all:?}");
    let table = ctl.run(&["keys", "list", "--show-revoked"], "").await;
    assert!(table.stdout.contains("REVOKED"), "{}", table.stdout);

    // Bad input is the server's INVALID_ARGUMENT, with the field.
    let unknown = ctl
        .run(
            &[
                "keys",
                "create",
                "--name",
                "bad",
                "--scope",
                "users.everything",
            ],
            "",
        )
        .await;
    assert!(!unknown.success);
    assert!(
        unknown.stderr.starts_with("error: INVALID_ARGUMENT: "),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stdout.is_empty(), "{}", unknown.stdout);
    let unknown_key = ctl
        .run(
            &["keys", "revoke", &uuid::Uuid::now_v7().to_string(), "--yes"],
            "",
        )
        .await;
    assert!(
        unknown_key.stderr.starts_with("error: NOT_FOUND: "),
        "{}",
        unknown_key.stderr
    );
}

#[tokio::test]
async fn keys_need_the_api_keys_permission() {
    let app = spawn_app().await;
    app.create_user("kim@example.com", "Kim", &["manager"])
        .await;
    let ctl = Ctl::new(&app);
    let login = login_as(&ctl, "kim@example.com", "a long enough password\n").await;
    assert!(login.success, "{}", login.stderr);
    for args in [
        vec!["keys", "list"],
        vec!["keys", "create", "--name", "mine", "--scope", "users.read"],
    ] {
        let run = ctl.run(&args, "").await;
        assert!(!run.success, "{args:?} went ahead");
        assert!(
            run.stderr.starts_with("error: PERMISSION_DENIED: "),
            "{}",
            run.stderr
        );
    }
}

/// The user id of whoever the saved session belongs to.
async fn my_user_id(ctl: &Ctl) -> String {
    let run = ctl.run(&["whoami", "--json"], "").await;
    assert!(run.success, "whoami failed: {}", run.stderr);
    run.json()["user"]["user_id"]
        .as_str()
        .expect("user_id")
        .to_owned()
}

/// Wherever a command names a user, an email or a login id does as well
/// as the id.
#[tokio::test]
async fn users_are_named_by_id_email_or_login_id() {
    let app = spawn_app().await;
    let mut request = crate::helpers::create_request("Ana@Example.com", "Ana Lima", &["agent"]);
    if let Some(user) = request.user.as_mut() {
        user.login_id = "ana.lima".into();
    }
    let ana = app
        .admin_users()
        .create_user(request)
        .await
        .expect("created")
        .into_inner()
        .user
        .expect("user");
    app.create_user("anabel@example.com", "Anabel", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    for name in [
        ana.user_id.as_str(),
        "ana@example.com",
        "ANA@EXAMPLE.COM",
        "ana.lima",
    ] {
        let run = ctl.run(&["users", "get", name, "--json"], "").await;
        assert!(run.success, "{name}: {}", run.stderr);
        assert_eq!(run.json()["user_id"], ana.user_id.as_str(), "{name}");
    }
    let presence = ctl
        .run(&["presence", "get", "ana.lima", "--json"], "")
        .await;
    assert_eq!(
        presence_user_ids(&presence),
        std::slice::from_ref(&ana.user_id)
    );
    let suspended = ctl
        .run(
            &["users", "suspend", "ana@example.com", "--yes", "--json"],
            "",
        )
        .await;
    assert!(suspended.success, "{}", suspended.stderr);
    assert_eq!(suspended.json()["state"], "USER_STATE_SUSPENDED");
    let unknown = ctl.run(&["users", "get", "nobody@example.com"], "").await;
    assert!(!unknown.success);
    assert!(
        unknown
            .stderr
            .contains("no user has the id, email or login id \"nobody@example.com\""),
        "{}",
        unknown.stderr
    );
}

/// Teams are named by id or by name (any case), as the import CSV names
/// them, wherever a command takes one.
#[tokio::test]
async fn teams_are_named_by_id_or_name() {
    let app = spawn_app().await;
    let tier1 = app.create_team("Tier 1").await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let created = ctl
        .run(
            &[
                "users",
                "create",
                "--email",
                "tia@example.com",
                "--name",
                "Tia",
                "--team",
                "tier 1",
                "--password-stdin",
                "--json",
            ],
            &format!("{}\n", crate::helpers::USER_PASSWORD),
        )
        .await;
    assert!(created.success, "{}", created.stderr);
    assert_eq!(
        created.json()["team_ids"],
        serde_json::json!([tier1.clone()])
    );
    for team in ["Tier 1", tier1.as_str()] {
        let listed = ctl
            .run(&["users", "list", "--team", team, "--json"], "")
            .await;
        assert!(listed.success, "{}", listed.stderr);
        let users = listed.json();
        let emails: Vec<&str> = users
            .as_array()
            .expect("array of users")
            .iter()
            .filter_map(|u| u["email"].as_str())
            .collect();
        assert_eq!(emails, ["tia@example.com"], "{team}");
    }
    let unknown = ctl.run(&["users", "list", "--team", "Tier 9"], "").await;
    assert!(!unknown.success);
    assert!(
        unknown
            .stderr
            .contains("no team has the id or name \"Tier 9\""),
        "{}",
        unknown.stderr
    );
}

/// Completion scripts for each shell and the man page, with no server and
/// no session.
#[tokio::test]
async fn completion_scripts_and_the_man_page_need_no_server() {
    let ctl = Ctl::at("http://127.0.0.1:9".into());
    for (shell, marker) in [
        ("bash", "complete -F _rosterctl"),
        ("zsh", "#compdef rosterctl"),
        ("fish", "complete -c rosterctl"),
    ] {
        let run = ctl.run(&["completion", shell], "").await;
        assert!(run.success, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}: {}", run.stdout);
        // Subcommands are completed.
        assert!(run.stdout.contains("presence"), "{shell}");
    }
    let man = ctl.run(&["man"], "").await;
    assert!(man.success, "{}", man.stderr);
    assert!(man.stdout.contains(".TH rosterctl 1"), "{}", man.stdout);
    assert!(man.stdout.contains("presence"), "{}", man.stdout);
}

/// A server that is not there: the error says what to check.
#[tokio::test]
async fn a_server_that_does_not_answer_gets_a_hint() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let failed = Ctl::at(format!("http://127.0.0.1:{port}"))
        .failed_login()
        .await;
    assert!(
        failed.contains("is rosterd running, and is the port right?"),
        "{failed}"
    );
}

/// The status of one user's presence, as the admin reads it.
async fn status_of(ctl: &Ctl, user_id: &str) -> String {
    let run = ctl.run(&["presence", "get", user_id, "--json"], "").await;
    assert!(run.success, "get failed: {}", run.stderr);
    run.json()[0]["status"].as_str().expect("status").to_owned()
}

/// `presence set --hold` keeps one's presence past the lease, where a
/// presence nobody beats for turns OFFLINE; an OFFLINE `set` says why and
/// what to run, and `presence heartbeat` brings the presence back.
#[tokio::test]
async fn presence_hold_keeps_the_lease_and_heartbeat_brings_an_offline_user_back() {
    let app = spawn_app().await;
    app.update_org(
        roster::api::pb::OrgSettings {
            presence_lease: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            ..Default::default()
        },
        &["presence_lease"],
    )
    .await;
    let carol = app
        .create_user("carol@example.com", "Carol", &["agent"])
        .await;
    app.login("carol@example.com", crate::helpers::USER_PASSWORD)
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let admin_id = my_user_id(&ctl).await;

    let mut held = ctl.spawn(&["presence", "set", "available", "--hold"]);
    let row = held.line_until(|line| line.contains(&admin_id)).await;
    assert!(row.contains("AVAILABLE"), "{row}");
    // Past the 5 s lease: Carol, whom nobody beats for, is OFFLINE.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        status_of(&ctl, &carol.user_id).await,
        "PRESENCE_STATUS_OFFLINE"
    );
    assert_eq!(
        status_of(&ctl, &admin_id).await,
        "PRESENCE_STATUS_AVAILABLE"
    );
    held.stop();

    // Once the lease has run out, setting one's status says why and what to run.
    app.sql(&format!(
        "UPDATE presence SET status = 'offline', active_chats = 0 WHERE user_id = '{admin_id}'"
    ))
    .await;
    let refused = ctl.run(&["presence", "set", "available"], "").await;
    assert!(!refused.success);
    assert!(
        refused.stderr.contains("USER_OFFLINE"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("lease ran out"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("rosterctl presence heartbeat"),
        "{}",
        refused.stderr
    );
    let beat = ctl.run(&["presence", "heartbeat", "--json"], "").await;
    assert!(beat.success, "heartbeat failed: {}", beat.stderr);
    assert_eq!(beat.json()["status"], "PRESENCE_STATUS_UNAVAILABLE");
    let set = ctl.run(&["presence", "set", "available"], "").await;
    assert!(set.success, "set failed: {}", set.stderr);
}

/// The `user_id` of each presence in a `--json` array.
fn presence_user_ids(run: &Run) -> Vec<String> {
    assert!(run.success, "command failed: {}", run.stderr);
    run.json()
        .as_array()
        .expect("array of presences")
        .iter()
        .map(|p| p["user_id"].as_str().expect("user_id").to_owned())
        .collect()
}

#[tokio::test]
async fn presence_set_prints_the_new_presence() {
    let app = spawn_app().await;
    let carol = app
        .create_user("carol@example.com", "Carol", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let admin_id = my_user_id(&ctl).await;

    // Signing in made the admin UNAVAILABLE; admin holds chats.handle.
    let set = ctl
        .run(&["presence", "set", "available", "--json"], "")
        .await;
    assert!(set.success, "set failed: {}", set.stderr);
    let presence = set.json();
    assert_eq!(presence["user_id"], admin_id.as_str());
    assert_eq!(presence["status"], "PRESENCE_STATUS_AVAILABLE");
    assert_eq!(presence["can_handle_chats"], true);
    assert_eq!(presence["has_capacity"], true);
    assert!(
        presence["status_changed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{presence}"
    );
    assert!(
        presence["max_chats_source"]
            .as_str()
            .is_some_and(|s| s.starts_with("MAX_CHATS_SOURCE_")),
        "{presence}"
    );

    let table = ctl.run(&["presence", "set", "unavailable"], "").await;
    assert!(table.success, "set failed: {}", table.stderr);
    assert!(table.stdout.starts_with("USER"), "{}", table.stdout);
    for column in ["STATUS", "CHATS", "CAPACITY", "SINCE", "TEAMS"] {
        assert!(table.stdout.contains(column), "{}", table.stdout);
    }
    assert!(table.stdout.contains(&admin_id), "{}", table.stdout);
    assert!(table.stdout.contains("UNAVAILABLE"), "{}", table.stdout);

    // Carol never signed in: she is OFFLINE, and only signing in changes that.
    let offline = ctl
        .run(
            &["presence", "set", "available", "--user", &carol.user_id],
            "",
        )
        .await;
    assert!(!offline.success, "{}", offline.stdout);
    assert!(
        offline.stderr.starts_with("error: FAILED_PRECONDITION: "),
        "{}",
        offline.stderr
    );
}

#[tokio::test]
async fn presence_get_and_list() {
    let app = spawn_app().await;
    let carol = app
        .create_user("carol@example.com", "Carol", &["agent"])
        .await;
    let dave = app
        .create_user("dave@example.com", "Dave", &["agent"])
        .await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let admin_id = my_user_id(&ctl).await;

    let got = ctl
        .run(
            &["presence", "get", &carol.user_id, &admin_id, "--json"],
            "",
        )
        .await;
    // In the order asked for.
    assert_eq!(
        presence_user_ids(&got),
        [carol.user_id.clone(), admin_id.clone()]
    );
    let presences = got.json();
    assert_eq!(presences[0]["status"], "PRESENCE_STATUS_OFFLINE");
    assert_eq!(presences[1]["status"], "PRESENCE_STATUS_UNAVAILABLE");

    let table = ctl.run(&["presence", "get", &admin_id], "").await;
    assert!(table.success, "get failed: {}", table.stderr);
    assert!(table.stdout.starts_with("USER"), "{}", table.stdout);
    assert!(table.stdout.contains("UNAVAILABLE"), "{}", table.stdout);

    let no_ids = ctl.run(&["presence", "get"], "").await;
    assert!(!no_ids.success, "get without ids went ahead");

    let listed = ctl.run(&["presence", "list", "--json", "--all"], "").await;
    let ids = presence_user_ids(&listed);
    for id in [&admin_id, &carol.user_id, &dave.user_id] {
        assert!(ids.contains(id), "{id} missing from {ids:?}");
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "not ordered by user id");

    let offline = ctl
        .run(
            &["presence", "list", "--status", "offline", "--json", "--all"],
            "",
        )
        .await;
    let ids = presence_user_ids(&offline);
    assert!(ids.contains(&carol.user_id), "{ids:?}");
    assert!(ids.contains(&dave.user_id), "{ids:?}");
    assert!(!ids.contains(&admin_id), "{ids:?}");

    let page = ctl
        .run(&["presence", "list", "--json", "--page-size", "1"], "")
        .await;
    assert_eq!(presence_user_ids(&page).len(), 1);
    assert!(page.stderr.contains("next page token"), "{}", page.stderr);
}

#[tokio::test]
async fn presence_watch_json_prints_the_snapshot_then_each_change() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let admin_id = my_user_id(&ctl).await;

    let mut watch = ctl.spawn(&["presence", "watch", "--json"]);
    let snapshot = watch
        .json_lines_until(|event| event["kind"] == "PRESENCE_EVENT_KIND_SNAPSHOT_END")
        .await;
    let (end, items) = snapshot.split_last().expect("at least the end marker");
    assert!(end["sequence"].is_u64(), "{end}");
    assert!(
        items
            .iter()
            .all(|e| e["kind"] == "PRESENCE_EVENT_KIND_SNAPSHOT"),
        "{items:?}"
    );
    let mine = items
        .iter()
        .find(|e| e["presence"]["user_id"] == admin_id.as_str())
        .unwrap_or_else(|| panic!("the admin is not in the snapshot: {items:?}"));
    assert_eq!(mine["presence"]["status"], "PRESENCE_STATUS_UNAVAILABLE");

    // A change made elsewhere arrives on the open stream, after the snapshot.
    let set = ctl.run(&["presence", "set", "available"], "").await;
    assert!(set.success, "set failed: {}", set.stderr);
    let changes = watch
        .json_lines_until(|event| {
            event["kind"] == "PRESENCE_EVENT_KIND_CHANGE"
                && event["presence"]["user_id"] == admin_id.as_str()
        })
        .await;
    let change = changes.last().expect("the change");
    assert_eq!(change["presence"]["status"], "PRESENCE_STATUS_AVAILABLE");
    assert_eq!(change["reason"], "PRESENCE_CHANGE_REASON_AVAILABILITY_SET");
    assert!(
        change["sequence"].as_u64() > end["sequence"].as_u64(),
        "{change} after {end}"
    );

    let stderr = watch.stop();
    assert!(!stderr.contains("error:"), "{stderr}");
}

/// The value of the `LABEL value` row of a key-value table.
fn table_value(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(' '))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label} row in {stdout}"))
}

#[tokio::test]
async fn users_import_then_imports_show_list_and_report() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("people.csv");
    std::fs::write(
        &file,
        "first_name,last_name,login_id,email\n\
         Ana,Lima,,ana@example.com\n\
         Bob,Stone,,not-an-email\n",
    )
    .expect("write the file");
    let path = file.to_str().expect("UTF-8 path");

    // Rejected rows are the report's business: the job ran, exit status 0.
    let run = ctl.run(&["users", "import", path], "").await;
    assert!(run.success, "import failed: {}", run.stderr);
    assert_eq!(
        table_value(&run.stdout, "STATUS"),
        "COMPLETED_WITH_ERRORS",
        "{}",
        run.stdout
    );
    assert_eq!(table_value(&run.stdout, "FILE"), "people.csv");
    assert_eq!(table_value(&run.stdout, "ROWS"), "2");
    assert_eq!(table_value(&run.stdout, "IMPORTED"), "1");
    assert_eq!(table_value(&run.stdout, "FAILED"), "1");
    assert!(
        run.stdout.contains("\nline 3: email: INVALID_EMAIL"),
        "{}",
        run.stdout
    );
    let job_id = table_value(&run.stdout, "ID");
    assert!(
        run.stderr
            .contains(&format!("rosterctl imports report {job_id}")),
        "{}",
        run.stderr
    );
    let ana = ctl
        .run(
            &["users", "list", "--query", "ana@example.com", "--json"],
            "",
        )
        .await;
    assert_eq!(
        ana.json()[0]["state"],
        "USER_STATE_INVITED",
        "{}",
        ana.stdout
    );

    let show = ctl.run(&["imports", "show", &job_id, "--json"], "").await;
    assert!(show.success, "show failed: {}", show.stderr);
    let job = show.json();
    assert_eq!(job["import_job_id"], job_id.as_str());
    assert_eq!(job["status"], "IMPORT_JOB_STATUS_COMPLETED_WITH_ERRORS");
    assert_eq!(
        (
            &job["total_rows"],
            &job["imported_rows"],
            &job["failed_rows"]
        ),
        (&Value::from(2), &Value::from(1), &Value::from(1))
    );
    assert_eq!(job["dry_run"], false);
    assert!(job["finished_at"].is_string(), "{job}");

    let report = ctl.run(&["imports", "report", &job_id], "").await;
    assert!(report.success, "report failed: {}", report.stderr);
    assert_eq!(report.stdout.lines().count(), 1, "{}", report.stdout);
    assert!(
        report.stdout.starts_with("line 3: email: INVALID_EMAIL: "),
        "{}",
        report.stdout
    );
    let lines = ctl
        .run(&["imports", "report", &job_id, "--json"], "")
        .await
        .json();
    let line = &lines["lines"][0];
    assert_eq!(
        (&line["line"], &line["column"], &line["reason"]),
        (
            &Value::from(3),
            &Value::from("email"),
            &Value::from("INVALID_EMAIL")
        ),
        "{lines}"
    );
    assert!(line["message"].is_string(), "{lines}");

    // A dry run of the same file, as JSON: Ana is now taken.
    let dry = ctl
        .run(
            &[
                "users",
                "import",
                path,
                "--dry-run",
                "--default-role",
                "supervisor",
                "--json",
            ],
            "",
        )
        .await;
    assert!(dry.success, "dry run failed: {}", dry.stderr);
    let dry = dry.json();
    assert_eq!(dry["dry_run"], true);
    // As a table, a dry run says what it would import, never "IMPORTED".
    let table = ctl.run(&["users", "import", path, "--dry-run"], "").await;
    assert!(table.success, "dry run failed: {}", table.stderr);
    assert_eq!(table_value(&table.stdout, "WOULD IMPORT"), "0");
    assert!(!table.stdout.contains("IMPORTED"), "{}", table.stdout);
    assert_eq!(
        (&dry["imported_rows"], &dry["failed_rows"]),
        (&Value::from(0), &Value::from(2))
    );

    let list = ctl
        .run(
            &[
                "imports",
                "list",
                "--sort",
                "uploaded-at",
                "--desc",
                "--json",
            ],
            "",
        )
        .await;
    assert!(list.success, "list failed: {}", list.stderr);
    let ids: Vec<&str> = list
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|j| j["import_job_id"].as_str().expect("id"))
        .map(|id| if id == job_id { "first" } else { "dry" })
        .collect();
    assert_eq!(ids, vec!["dry", "dry", "first"]);
    let table = ctl.run(&["imports", "list"], "").await;
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    assert!(
        table.stdout.contains("COMPLETED_WITH_ERRORS"),
        "{}",
        table.stdout
    );
    let since_now = ctl
        .run(
            &[
                "imports",
                "list",
                "--since",
                "2999-01-01T00:00:00Z",
                "--json",
            ],
            "",
        )
        .await;
    assert_eq!(since_now.json(), serde_json::json!([]));

    // A file the server cannot read at all: the job FAILED, status 1.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").expect("write");
    let failed = ctl
        .run(&["users", "import", empty.to_str().expect("path")], "")
        .await;
    assert!(!failed.success);
    assert_eq!(table_value(&failed.stdout, "STATUS"), "FAILED");
    assert!(
        failed.stdout.contains("file: the file is empty"),
        "{}",
        failed.stdout
    );
    assert!(
        failed.stderr.contains("nothing was imported"),
        "{}",
        failed.stderr
    );

    let missing = ctl
        .run(&["imports", "show", &uuid::Uuid::now_v7().to_string()], "")
        .await;
    assert!(!missing.success);
    assert!(
        missing.stderr.starts_with("error: NOT_FOUND: "),
        "{}",
        missing.stderr
    );
    let no_file = ctl
        .run(&["users", "import", "/nonexistent/people.csv"], "")
        .await;
    assert!(!no_file.success);
    assert!(no_file.stderr.contains("cannot open"), "{}", no_file.stderr);
}

#[tokio::test]
async fn report_activity_prints_a_table_json_and_csv() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    ctl.login_admin().await;
    let me = my_user_id(&ctl).await;
    let since = (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc3339();

    let json = ctl
        .run(
            &[
                "report", "activity", "--since", &since, "--by", "hour", "--json", "--all",
            ],
            "",
        )
        .await;
    assert!(json.success, "report failed: {}", json.stderr);
    let rows = json.json();
    let rows = rows.as_array().expect("array of rows");
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["user_id"] == me.as_str()));
    // Never AVAILABLE: signed in means UNAVAILABLE until one says otherwise.
    let total = |field: &str| {
        rows.iter()
            .map(|r| r[field].as_i64().expect(field))
            .sum::<i64>()
    };
    assert_eq!(total("available_seconds"), 0);

    let csv = ctl
        .run(
            &[
                "report", "activity", "--since", &since, "--user", &me, "--csv",
            ],
            "",
        )
        .await;
    assert!(csv.success, "report --csv failed: {}", csv.stderr);
    let mut lines = csv.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(
            "user_id,bucket_start,offline_seconds,unavailable_seconds,available_seconds,peak_active_chats"
        )
    );
    let row = lines.next().expect("a row");
    assert!(row.starts_with(&format!("{me},")), "{row}");

    let table = ctl
        .run(&["report", "activity", "--since", &since], "")
        .await;
    assert!(table.success, "report failed: {}", table.stderr);
    assert!(
        table.stdout.contains("UNAVAILABLE") && table.stdout.contains(&me),
        "{}",
        table.stdout
    );

    let reversed = ctl
        .run(
            &[
                "report",
                "activity",
                "--since",
                &since,
                "--until",
                "2020-01-01T00:00:00Z",
            ],
            "",
        )
        .await;
    assert!(!reversed.success);
    assert!(
        reversed.stderr.contains("--since must be before --until"),
        "{}",
        reversed.stderr
    );
    let too_old = ctl
        .run(
            &[
                "report",
                "activity",
                "--since",
                "2020-01-01T00:00:00Z",
                "--until",
                "2020-01-02T00:00:00Z",
            ],
            "",
        )
        .await;
    assert!(!too_old.success);
    assert!(
        too_old.stderr.contains("BEYOND_RETENTION"),
        "{}",
        too_old.stderr
    );
}

#[tokio::test]
async fn orgs_are_managed_with_a_platform_key() {
    let app = spawn_app().await;
    let ctl = Ctl::new(&app);
    let key = app.platform_key("ops").await;
    let env = [("ROSTER_PLATFORM_KEY", key.as_str())];

    let run = ctl.run(&["orgs", "list"], "").await;
    assert!(
        !run.success && run.stderr.contains("ROSTER_PLATFORM_KEY"),
        "{}",
        run.stderr
    );

    let run = ctl
        .run_with(
            &[
                "--json",
                "orgs",
                "create",
                "--slug",
                "globex",
                "--name",
                "Globex",
                "--seat-limit",
                "5",
                "--admin-email",
                "boss@globex.test",
                "--admin-name",
                "Boss",
                "--admin-password-stdin",
            ],
            "a long enough password\n",
            &env,
        )
        .await;
    assert!(run.success, "{}", run.stderr);
    let created = run.json();
    assert_eq!(created["org"]["slug"], "globex");
    assert_eq!(created["org"]["seat_limit"], 5);
    assert!(created["invite_expires_at"].is_null());

    let run = ctl.run_with(&["orgs", "get", "globex"], "", &env).await;
    assert!(
        run.success && run.stdout.contains("Globex") && run.stdout.contains("ORG_STATE_ACTIVE"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = ctl
        .run_with(
            &[
                "--json",
                "orgs",
                "update",
                "globex",
                "--name",
                "Globex Corp",
            ],
            "",
            &env,
        )
        .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()["display_name"], "Globex Corp");
    let run = ctl
        .run_with(
            &["orgs", "suspend", "globex", "--reason", "unpaid", "--yes"],
            "",
            &env,
        )
        .await;
    assert!(
        run.success && run.stdout.contains("unpaid"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = ctl
        .run_with(
            &["--json", "orgs", "list", "--state", "suspended"],
            "",
            &env,
        )
        .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json().as_array().map(Vec::len), Some(1));
    let run = ctl
        .run_with(&["orgs", "reactivate", "globex"], "", &env)
        .await;
    assert!(run.success, "{}", run.stderr);
    let run = ctl
        .run_with(&["orgs", "delete", "globex", "--yes"], "", &env)
        .await;
    assert!(
        !run.success && run.stderr.contains("ORG_NOT_SUSPENDED"),
        "{}",
        run.stderr
    );
    let run = ctl.run_with(&["orgs", "delete", "globex"], "", &env).await;
    assert!(
        !run.success && run.stderr.contains("--yes"),
        "{}",
        run.stderr
    );
    ctl.run_with(&["orgs", "suspend", "globex", "--yes"], "", &env)
        .await;
    let run = ctl
        .run_with(&["orgs", "delete", "globex", "--yes"], "", &env)
        .await;
    assert!(
        run.success && run.stdout.contains("1 users"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    let run = ctl.run_with(&["orgs", "get", "globex"], "", &env).await;
    assert!(
        !run.success && run.stderr.contains("no org has the slug"),
        "{}",
        run.stderr
    );
    let run = ctl
        .run_with(
            &["--json", "orgs", "audit", "--action", "org.delete"],
            "",
            &env,
        )
        .await;
    assert!(run.success, "{}", run.stderr);
    assert_eq!(run.json()[0]["org_slug"], "globex");

    // An org's session is no platform key.
    let run = ctl
        .run_with(
            &["orgs", "list"],
            "",
            &[("ROSTER_PLATFORM_KEY", app.admin_token.as_str())],
        )
        .await;
    assert!(
        !run.success && run.stderr.contains("WRONG_CALLER_KIND"),
        "{}",
        run.stderr
    );
}
