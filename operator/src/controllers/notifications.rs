//! The kill switch, told to the Strategy's notification targets: the operator is the one who sees
//! `spec.paused` change (the coordinator is scaled to zero by it). Everything else the team tells
//! comes from the coordinator (docs/architecture.md, "Notifications").

use super::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use notify::{Event, Retry, Target};
use protocol::crd::{NotificationEvent, NotificationTarget, Strategy};

/// Tells the kill switch's new state to every target of `s` that wants risk events, from a task of
/// its own: a slow or failing channel never holds the reconcile.
pub fn tell_kill_switch(ctx: &Context, s: &Strategy, engaged: bool) {
    let Some(spec) = s.spec.notifications.clone() else {
        return;
    };
    let namespace = s.metadata.namespace.clone().unwrap_or_default();
    let strategy = format!(
        "{namespace}/{}",
        s.metadata.name.as_deref().unwrap_or_default()
    );
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let event = Event::kill_switch(&strategy, engaged);
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        for wanted in spec
            .targets
            .iter()
            .filter(|t| t.wants(NotificationEvent::Risk))
        {
            let target = match target(&secrets, wanted).await {
                Ok(target) => target,
                Err(error) => {
                    tracing::warn!(%strategy, target = %wanted.name, %error, "kill switch not told");
                    continue;
                }
            };
            if let Err(failure) =
                notify::deliver_once(&client, &target, &event, Retry::default()).await
            {
                tracing::warn!(%strategy, target = %wanted.name, %failure, "kill switch not told");
            }
        }
    });
}

/// The target `spec` with its address read from its Secret.
async fn target(secrets: &Api<Secret>, spec: &NotificationTarget) -> Result<Target, String> {
    let reference = &spec.secret_ref;
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|e| format!("reading Secret {}: {e}", reference.name))?
        .ok_or_else(|| format!("Secret {} does not exist", reference.name))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|data| data.get(&reference.key))
        .ok_or_else(|| format!("Secret {} has no key {}", reference.name, reference.key))?;
    let value = String::from_utf8(value.0.clone()).map_err(|_| {
        format!(
            "Secret {} key {} is not UTF-8",
            reference.name, reference.key
        )
    })?;
    Target::new(spec, &value).map_err(|e| e.to_string())
}
