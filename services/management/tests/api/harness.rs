//! An in-process management server on `127.0.0.1:0` over a fresh SQLite store, and a client
//! that calls any method by name with a JSON request, the way grpcurl does, so tests can be
//! generated from the descriptor set.

use std::{str::FromStr, sync::LazyLock};

use http::uri::PathAndQuery;
use outpost_management::{bootstrap, server};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor};
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Channel,
};

/// Every Outpost proto, for building requests by method name.
pub static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(outpost_proto::FILE_DESCRIPTOR_SET).expect("descriptor set decodes")
});

/// Every method of `outpost.management.v1`, as `Service/Method`.
pub fn management_methods() -> Vec<String> {
    POOL.services()
        .filter(|s| s.package_name() == "outpost.management.v1")
        .flat_map(|s| {
            s.methods()
                .map(|m| format!("{}/{}", s.name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The descriptor of `Service/Method`.
pub fn method(name: &str) -> MethodDescriptor {
    let (service, method) = name.split_once('/').expect("Service/Method");
    POOL.get_service_by_name(&format!("outpost.management.v1.{service}"))
        .and_then(|s| s.methods().find(|m| m.name() == method))
        .unwrap_or_else(|| panic!("no method {name}"))
}

/// A running server. Dropping it stops the server.
pub struct TestServer {
    pub admin_token: String,
    pub store: outpost_store::Store,
    channel: Channel,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestServer {
    pub async fn start() -> Self {
        let (store, dir) = outpost_store::testing::fresh_sqlite().await;
        let admin_token = bootstrap::ensure_admin(&store, dir.path())
            .await
            .expect("bootstrap")
            .expect("first start");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        tokio::spawn(server::serve_api(
            outpost_management::api::Api::new(
                store.clone(),
                "test-fingerprint".into(),
                outpost_ca::KeyEncryptionKey::generate(),
            ),
            listener,
            None,
            server::Limits::default(),
            shutdown.clone(),
        ));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        Self {
            admin_token,
            store,
            channel,
            shutdown,
            _dir: dir,
        }
    }

    /// Calls `Service/Method` with a JSON request (proto3 JSON, field names in either
    /// case), as the holder of `token`; returns the response as JSON.
    pub async fn call(
        &self,
        token: &str,
        name: &str,
        json: &str,
    ) -> Result<serde_json::Value, Status> {
        let method = method(name);
        let mut de = serde_json::Deserializer::from_str(json);
        let message = DynamicMessage::deserialize(method.input(), &mut de)
            .unwrap_or_else(|e| panic!("request for {name} does not fit its message: {e}: {json}"));
        self.call_message(token, &method, message).await
    }

    /// The request message for `Service/Method` from JSON, or `None` if the JSON does not
    /// fit the message (as when text is put in a number field).
    pub fn message(&self, name: &str, json: &str) -> Option<DynamicMessage> {
        let mut de = serde_json::Deserializer::from_str(json);
        DynamicMessage::deserialize(method(name).input(), &mut de).ok()
    }

    /// Calls with an already built message.
    pub async fn call_message(
        &self,
        token: &str,
        method: &MethodDescriptor,
        message: DynamicMessage,
    ) -> Result<serde_json::Value, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut request = Request::new(message);
        if !token.is_empty() {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("ascii token"),
            );
        }
        let path = PathAndQuery::from_str(&format!(
            "/{}/{}",
            method.parent_service().full_name(),
            method.name()
        ))
        .expect("path");
        let message = if method.is_server_streaming() {
            // A stream answers with its first message (a watch: the current state).
            let mut stream = grpc
                .server_streaming(request, path, DynamicCodec(method.output()))
                .await?
                .into_inner();
            stream
                .message()
                .await?
                .ok_or_else(|| Status::internal("the stream ended without a message"))?
        } else {
            grpc.unary(request, path, DynamicCodec(method.output()))
                .await?
                .into_inner()
        };
        Ok(serde_json::to_value(message).expect("response serializes"))
    }

    /// The directory holding the server's database files.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Creates a user in `tenant` (a DNS label) with `role`, and returns a token for it.
    pub async fn user_with_role(&self, tenant: &str, user: &str, role: Option<&str>) -> String {
        let admin = &self.admin_token;
        self.call(
            admin,
            "UserService/CreateUser",
            &format!(r#"{{"parent":"tenants/{tenant}","user_id":"{user}","user":{{}}}}"#),
        )
        .await
        .expect("create user");
        if let Some(role) = role {
            self.call(
                admin,
                "RoleBindingService/CreateRoleBinding",
                &format!(r#"{{"parent":"tenants/{tenant}","role_binding":{{"member":"tenants/{tenant}/users/{user}","role":"{role}"}}}}"#),
            )
            .await
            .expect("bind role");
        }
        let created = self
            .call(
                admin,
                "ApiTokenService/CreateApiToken",
                &format!(r#"{{"parent":"tenants/{tenant}/users/{user}"}}"#),
            )
            .await
            .expect("create token");
        created["token"]
            .as_str()
            .expect("token in answer")
            .to_owned()
    }
}

#[derive(Clone)]
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }
    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.0.clone())
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;
    fn encode(&mut self, item: DynamicMessage, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        DynamicMessage::decode(self.0.clone(), buf)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}
