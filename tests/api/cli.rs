//! `rosterctl` end to end: the real binary against the real server, with a
//! config dir of its own per test so no session leaks between tests or from
//! the developer's machine.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, ORG, TestApp, spawn_app};

/// What one run of `rosterctl` left behind.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// `rosterctl` pointed at one test server and one private config dir.
struct Ctl {
    server: String,
    config_dir: tempfile::TempDir,
}

impl Ctl {
    fn new(app: &TestApp) -> Self {
        Self {
            server: format!("http://{}", app.addr),
            config_dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Runs `rosterctl --server … ARGS` with `stdin` as its input. The
    /// server lives on this test's runtime, so the blocking wait for the
    /// child happens on a thread of its own.
    async fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rosterctl"));
        command
            .arg("--server")
            .arg(&self.server)
            .args(args)
            .env("ROSTER_CONFIG_DIR", self.config_dir.path())
            .env_remove("ROSTER_SERVER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("rosterctl starts");
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(stdin.as_bytes()).expect("write stdin");
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
