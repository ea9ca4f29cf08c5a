//! Whatever bytes a client sends, every RPC answers with a precise status:
//! never `INTERNAL` or `UNKNOWN`. The RPCs are walked from the served
//! descriptor set, so a new RPC is covered by itself.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use roster::api::pb;
use tonic::{Code, Request, Status, metadata::MetadataValue};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, RawCodec, TestApp, reason, spawn_app};

fn methods() -> Vec<MethodDescriptor> {
    let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let methods: Vec<MethodDescriptor> = pool
        .services()
        .filter(|s| s.package_name() == "roster.v1")
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect();
    assert!(methods.len() > 40, "found only {} RPCs", methods.len());
    methods
}

/// Sends `body` to the RPC as its only message with `token` (if any) and
/// returns how the call ended: an error status, or OK once the first
/// response message (or the end) arrived.
async fn call(
    app: &TestApp,
    method: &MethodDescriptor,
    token: Option<&str>,
    body: Vec<u8>,
) -> Status {
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let path = http::uri::PathAndQuery::try_from(path).expect("path");
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.expect("channel ready");
    let ended = match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => grpc
            .unary(authorized(body, token), path, RawCodec)
            .await
            .map(|_| ()),
        (false, true) => match grpc
            .server_streaming(authorized(body, token), path, RawCodec)
            .await
        {
            Ok(response) => response.into_inner().message().await.map(|_| ()),
            Err(status) => Err(status),
        },
        (true, false) => grpc
            .client_streaming(authorized(tokio_stream::once(body), token), path, RawCodec)
            .await
            .map(|_| ()),
        (true, true) => panic!("no bidirectional RPC expected: {}", method.full_name()),
    };
    match ended {
        Ok(()) => Status::ok(""),
        Err(status) => status,
    }
}

fn authorized<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        let value: MetadataValue<_> = format!("Bearer {token}").parse().expect("header");
        request.metadata_mut().insert("authorization", value);
    }
    request.set_timeout(Duration::from_secs(20));
    request
}

/// A fresh session of the admin, so RPCs that end sessions cannot spoil
/// the next call.
async fn fresh_token(app: &TestApp) -> String {
    app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.session_token
}

/// A credential `method` admits: the platform key for PlatformService,
/// else a fresh session of the admin.
async fn token_for(app: &TestApp, method: &MethodDescriptor, platform_key: &str) -> String {
    if method.parent_service().name() == "PlatformService" {
        platform_key.to_owned()
    } else {
        fresh_token(app).await
    }
}

fn assert_precise(method: &MethodDescriptor, case: &str, status: &Status) {
    assert!(
        !matches!(status.code(), Code::Internal | Code::Unknown),
        "{} with {case}: {:?} {}",
        method.full_name(),
        status.code(),
        status.message()
    );
}

/// Fills every field of a message (nested messages and lists too) with
/// `string`, `bytes` and the numbers of `extreme`.
fn filled(desc: &MessageDescriptor, string: &str, extreme: bool, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if let Some(value) = value_for(&field, string, extreme, depth) {
            let value = if field.is_list() {
                Value::List(vec![value.clone(), value])
            } else {
                value
            };
            message.set_field(&field, value);
        }
    }
    message
}

fn value_for(field: &FieldDescriptor, string: &str, extreme: bool, depth: usize) -> Option<Value> {
    Some(match field.kind() {
        Kind::String => Value::String(string.to_owned()),
        Kind::Bytes => Value::Bytes(Bytes::from(string.as_bytes().to_vec())),
        Kind::Bool => Value::Bool(extreme),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(if extreme { i32::MIN } else { -1 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(if extreme { i64::MIN } else { -1 })
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::MAX),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::MAX),
        Kind::Float => Value::F32(if extreme { f32::NAN } else { f32::MAX }),
        Kind::Double => Value::F64(if extreme { f64::INFINITY } else { f64::MIN }),
        Kind::Enum(_) => Value::EnumNumber(if extreme { i32::MAX } else { -1 }),
        Kind::Message(inner) if depth < 3 => {
            Value::Message(filled(&inner, string, extreme, depth + 1))
        }
        Kind::Message(_) => return None,
    })
}

/// The first string field of a message, encoded by hand with bytes that
/// are not UTF-8.
fn invalid_utf8(desc: &MessageDescriptor) -> Option<Vec<u8>> {
    let field = desc.fields().find(|f| matches!(f.kind(), Kind::String))?;
    let mut body = Vec::new();
    prost::encoding::encode_key(
        field.number(),
        prost::encoding::WireType::LengthDelimited,
        &mut body,
    );
    prost::encoding::encode_varint(2, &mut body);
    body.extend_from_slice(&[0xC3, 0x28]);
    Some(body)
}

#[tokio::test]
async fn every_rpc_answers_undecodable_bytes_with_malformed_request() {
    let app = spawn_app().await;
    let platform_key = app.platform_key("wire").await;
    for method in methods() {
        let token = token_for(&app, &method, &platform_key).await;
        // A field 1 of wire type 7, which does not exist; then, where the
        // request has text, a string that is not UTF-8.
        let bodies = std::iter::once(vec![0x0F, 0x01]).chain(invalid_utf8(&method.input()));
        for body in bodies {
            let status = call(&app, &method, Some(&token), body).await;
            let name = method.full_name();
            assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
            assert_eq!(reason(&status), "MALFORMED_REQUEST", "{name}");
        }
    }
}

#[tokio::test]
async fn every_rpc_refuses_nul_in_text_and_login_answers_as_for_any_failure() {
    let app = spawn_app().await;
    let platform_key = app.platform_key("wire").await;
    for method in methods() {
        let token = token_for(&app, &method, &platform_key).await;
        let request = filled(&method.input(), "a\u{0}b", false, 0);
        let has_text = request
            .fields()
            .any(|(f, _)| matches!(f.kind(), Kind::String | Kind::Message(_)));
        let status = call(&app, &method, Some(&token), request.encode_to_vec()).await;
        assert_precise(&method, "NUL strings", &status);
        if method.name() == "Login" {
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert_eq!(reason(&status), "INVALID_CREDENTIALS");
        } else if has_text && status.code() != Code::Ok {
            assert_eq!(
                status.code(),
                Code::InvalidArgument,
                "{}: {status:?}",
                method.full_name()
            );
        }
    }
}

#[tokio::test]
async fn every_rpc_answers_huge_strings_and_extreme_numbers_precisely() {
    let app = spawn_app().await;
    let platform_key = app.platform_key("wire").await;
    let huge = "é".repeat(50_000);
    for method in methods() {
        for (case, request) in [
            ("huge strings", filled(&method.input(), &huge, false, 0)),
            ("extreme numbers", filled(&method.input(), "", true, 0)),
            (
                "strings like ids",
                filled(
                    &method.input(),
                    "00000000-0000-0000-0000-000000000000",
                    true,
                    0,
                ),
            ),
        ] {
            let token = token_for(&app, &method, &platform_key).await;
            let status = call(&app, &method, Some(&token), request.encode_to_vec()).await;
            assert_precise(&method, case, &status);
        }
    }
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted() {
    let app = spawn_app().await;
    let token = fresh_token(&app).await;
    let methods = methods();
    for name in ["GetUser", "ImportUsers", "WatchPresence"] {
        let method = methods.iter().find(|m| m.name() == name).expect("method");
        let request = filled(&method.input(), &"x".repeat(5 * 1024 * 1024), false, 0);
        let status = call(&app, method, Some(&token), request.encode_to_vec()).await;
        assert_eq!(status.code(), Code::ResourceExhausted, "{name}: {status:?}");
        assert_eq!(reason(&status), "MESSAGE_TOO_LARGE", "{name}");
    }
}

#[tokio::test]
async fn the_authorization_header_is_read_strictly() {
    let app = spawn_app().await;
    let token = fresh_token(&app).await;
    let who_am_i = methods()
        .into_iter()
        .find(|m| m.name() == "WhoAmI")
        .expect("WhoAmI");
    let body = || pb::WhoAmIRequest {}.encode_to_vec();
    let status = call(&app, &who_am_i, Some(&token), body()).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    for header in [
        format!("Bearer  {token}"),
        format!("Bearer {token} "),
        format!("Bearer\t{token}"),
        format!("Bearer \t{token}"),
        format!("Bearer {token}\t"),
        format!("Token {token}"),
        token.clone(),
        "Bearer ".into(),
    ] {
        let mut grpc = tonic::client::Grpc::new(app.channel.clone());
        grpc.ready().await.expect("ready");
        let mut request = Request::new(body());
        request
            .metadata_mut()
            .insert("authorization", header.parse().expect("a header value"));
        let status = grpc
            .unary(
                request,
                http::uri::PathAndQuery::from_static("/roster.v1.AuthService/WhoAmI"),
                RawCodec,
            )
            .await
            .expect_err("refused");
        assert_eq!(
            status.code(),
            Code::Unauthenticated,
            "{header:?}: {status:?}"
        );
        assert_eq!(reason(&status), "MISSING_CREDENTIALS", "{header:?}");
    }
}
