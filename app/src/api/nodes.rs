//! Nodes: list, connection check, add, edit, delete, and the secure channel's actions: re-pin
//! a changed certificate and rotate a node's token (never shown).

use leptos::prelude::*;

use crate::error::AppError;
use crate::model::{CreatedNode, NodeCheck, NodeForm, NodeView};

/// All nodes, by id.
#[server(endpoint = "list_nodes", output = super::Json)]
pub async fn list_nodes() -> Result<Vec<NodeView>, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let nodes = services
        .nodes
        .list()
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(nodes.into_iter().map(crate::ssr::node_view).collect())
}

/// One node.
#[server(endpoint = "load_node", input = super::Json, output = super::Json)]
pub async fn load_node(id: i64) -> Result<NodeView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let node = services
        .nodes
        .get(id)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::node_view(node))
}

/// Checks that a node answers on `host:http_port` and accepts the token, without saving anything.
#[server(endpoint = "check_node", input = super::Json, output = super::Json)]
pub async fn check_node(form: NodeForm) -> Result<NodeCheck, AppError> {
    use crate::{ssr, validate};
    let (services, _) = ssr::signed_in().await?;
    let host = validate::host("host", &form.host)?;
    let port = validate::port("http_port", &form.http_port.to_string(), false)?;
    let token = validate::node_token(&form.http_token)?;
    if !form.tls_fingerprint.trim().is_empty() {
        rules::input::fingerprint(&form.tls_fingerprint)?;
    }
    match services
        .nodes
        .check(&host, port, &token, form.insecure_http)
        .await
    {
        Ok(checked) => Ok(NodeCheck {
            fingerprint: checked.fingerprint.map(|f| f.to_string()),
            ..ssr::node_check(checked.info)
        }),
        // Without a token (one will be generated) a rejection still proves the node answers.
        Err(err) if token.is_empty() && err.field() == Some("http_token") => Ok(NodeCheck {
            summary: "The node answers; start it with the generated token shown after adding."
                .to_owned(),
            fingerprint: None,
        }),
        Err(err) => Err(ssr::service_error(err)),
    }
}

/// Adds a node. An empty token makes the manager generate one, returned once in the result.
#[server(endpoint = "add_node", input = super::Json, output = super::Json)]
pub async fn add_node(form: NodeForm) -> Result<CreatedNode, AppError> {
    use crate::{ssr, validate};
    let (services, _) = ssr::signed_in().await?;
    let host = validate::host("host", &form.host)?;
    let http_port = validate::port("http_port", &form.http_port.to_string(), false)?;
    let token = validate::node_token(&form.http_token)?;
    let generated = token.is_empty();
    let tls_fingerprint = match form.tls_fingerprint.trim() {
        "" => None,
        given => Some(rules::input::fingerprint(given)?),
    };
    let name = match form.name.trim() {
        "" => None,
        given => Some(rules::input::node_name(given)?),
    };
    let node = services
        .nodes
        .create(manager::NewNode {
            name,
            host,
            http_port,
            http_token: (!generated).then_some(token),
            tls_fingerprint,
            insecure_http: form.insecure_http,
            usage_multiplier: multiplier(&form.usage_multiplier)?,
        })
        .await
        .map_err(ssr::service_error)?;
    let token = generated.then(|| node.http_token.clone());
    Ok(CreatedNode {
        node: ssr::node_view(node),
        token,
    })
}

/// Changes a node's name, address and API port, and its token when one is given (empty = keep).
#[server(endpoint = "update_node", input = super::Json, output = super::Json)]
pub async fn update_node(id: i64, form: NodeForm) -> Result<NodeView, AppError> {
    use crate::{ssr, validate};
    let (services, _) = ssr::signed_in().await?;
    let host = validate::host("host", &form.host)?;
    let http_port = validate::port("http_port", &form.http_port.to_string(), false)?;
    let token = validate::node_token(&form.http_token)?;
    let name = rules::input::node_name(&form.name)?;
    let node = services
        .nodes
        .update(
            id,
            manager::NodePatch {
                name: Some(name),
                host: Some(host),
                http_port: Some(http_port),
                http_token: (!token.is_empty()).then_some(token),
                usage_multiplier: multiplier(&form.usage_multiplier)?,
            },
        )
        .await
        .map_err(ssr::service_error)?;
    Ok(ssr::node_view(node))
}

/// The typed multiplier, checked; empty = none given.
#[cfg(feature = "ssr")]
fn multiplier(typed: &str) -> Result<Option<f64>, AppError> {
    match typed.trim() {
        "" => Ok(None),
        given => {
            let permille = rules::input::usage_multiplier_text(given)?;
            Ok(Some(f64::from(permille) / 1000.0))
        }
    }
}

/// The spec's manual restart: pushes the node's full config now and has the node rebuild its
/// runtime from scratch (sessions the config still allows, counters and the replay filter
/// survive). An unreachable node is an error naming why.
#[server(endpoint = "restart_node", input = super::Json, output = super::Json)]
pub async fn restart_node(id: i64) -> Result<NodeView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let node = services
        .nodes
        .restart(id)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::node_view(node))
}

/// Zeroes a node's usage total (its history stays).
#[server(endpoint = "reset_node_usage", input = super::Json, output = super::Json)]
pub async fn reset_node_usage(id: i64) -> Result<NodeView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let node = services
        .nodes
        .reset_usage(id)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::node_view(node))
}

/// Deletes a node.
#[server(endpoint = "delete_node", input = super::Json, output = super::Json)]
pub async fn delete_node(id: i64) -> Result<(), AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    services
        .nodes
        .delete(id)
        .await
        .map_err(crate::ssr::service_error)
}

/// Pins the certificate the node presented after its pinned one changed (a reinstall, or an
/// attacker: the administrator confirms first). The node is pushed to at once.
#[server(endpoint = "repin_node", input = super::Json, output = super::Json)]
pub async fn repin_node(id: i64) -> Result<NodeView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let node = services
        .nodes
        .repin(id, None)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::node_view(node))
}

/// Gives the node a new random token without downtime. The token is never returned: the manager
/// keeps it and the node stores only its hash.
#[server(endpoint = "rotate_node_token", input = super::Json, output = super::Json)]
pub async fn rotate_node_token(id: i64) -> Result<NodeView, AppError> {
    let (services, _) = crate::ssr::signed_in().await?;
    let node = services
        .nodes
        .rotate_token(id)
        .await
        .map_err(crate::ssr::service_error)?;
    Ok(crate::ssr::node_view(node))
}
