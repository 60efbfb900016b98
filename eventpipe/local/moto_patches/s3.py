"""moto S3 patches: AWS-shaped EventBridge events from S3 (H1) and the notification configuration (H9).

See docs/local-mode.md for what each one reproduces and the test that shows it."""

from __future__ import annotations

import logging
import re
from typing import Any

from eventpipe.local.moto_patches.hooks import Hooks
from eventpipe.local.moto_patches.patching import replace
from eventpipe.local.s3_events import ObjectChange, build_event

log = logging.getLogger("eventpipe.local.moto_patches.s3")


def install(hooks: Hooks) -> None:
    """H1 (S3 -> EventBridge events) and H9 (GetBucketNotificationConfiguration)."""
    from moto.s3 import models as s3_models
    from moto.s3 import notifications

    def eventbridge_enabled(bucket: Any) -> bool:
        config = bucket.notification_configuration
        return config is not None and config.event_bridge is not None

    def emit(change: ObjectChange, bucket: Any) -> None:
        if hooks.engine is None:
            return
        event = build_event(change, account=hooks.account, region=bucket.region_name)
        try:
            hooks.engine.publish("default", event)  # S3 publishes to the default bus only
        except Exception:  # notification is asynchronous on AWS: it never fails the S3 request
            log.exception("could not publish the S3 event for %s/%s", change.bucket, change.key)

    reasons: dict[str, str] = {
        notifications.S3NotificationEvent.OBJECT_CREATED_PUT_EVENT: "PutObject",
        notifications.S3NotificationEvent.OBJECT_CREATED_POST_EVENT: "POST Object",
        notifications.S3NotificationEvent.OBJECT_CREATED_COPY_EVENT: "CopyObject",
        notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT: (
            "CompleteMultipartUpload"
        ),
    }

    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        reason = reasons.get(event_name)
        if reason is None:
            return  # deletions come from the delete_object wrapper; ACL/tag events are not emitted
        if reason == "PutObject" and getattr(key, "multipart", None) is not None:
            return  # moto's inner PutObject of CompleteMultipartUpload
        emit(
            ObjectChange(
                bucket=bucket.name,
                key=key.name,
                reason=reason,
                size=key.size,
                etag=key.etag,
                version_id=key.version_id if bucket.is_versioned else None,
            ),
            bucket,
        )

    original_delete = s3_models.S3Backend.delete_object

    def delete_object(
        self: Any, bucket_name: str, key_name: str, version_id: str | None = None, bypass: bool = False
    ) -> tuple[bool, dict[str, Any]]:
        deleted, meta = original_delete(self, bucket_name, key_name, version_id=version_id, bypass=bypass)
        bucket = self.get_bucket(bucket_name)
        if deleted and eventbridge_enabled(bucket):
            if not bucket.is_versioned:
                change = ObjectChange(
                    bucket=bucket_name,
                    key=key_name,
                    reason="DeleteObject",
                    deletion_type="Permanently Deleted",
                )
            elif version_id is None:
                change = ObjectChange(
                    bucket=bucket_name,
                    key=key_name,
                    reason="DeleteObject",
                    version_id=str(meta.get("version-id")),
                    deletion_type="Delete Marker Created",
                )
            else:
                change = ObjectChange(
                    bucket=bucket_name,
                    key=key_name,
                    reason="DeleteObject",
                    version_id=version_id,
                    deletion_type="Permanently Deleted",
                )
            emit(change, bucket)
        return deleted, meta

    from moto.s3.responses import S3Response

    original_get_notification = S3Response.get_bucket_notification

    def get_bucket_notification(self: Any) -> Any:  # H9
        response = original_get_notification(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is None or config.event_bridge is None or not isinstance(response, tuple):
            return response
        status, headers, body = response
        text = body.decode() if isinstance(body, bytes) else str(body)
        text = re.sub(
            r"<NotificationConfiguration([^>]*?)/>",
            r"<NotificationConfiguration\1></NotificationConfiguration>",
            text,
        )
        text = text.replace(
            "</NotificationConfiguration>", "<EventBridgeConfiguration/></NotificationConfiguration>"
        )
        return status, headers, text

    replace(S3Response, "get_bucket_notification", get_bucket_notification)
    replace(notifications, "_send_event_bridge_message", send_event_bridge_message)
    replace(s3_models.S3Backend, "delete_object", delete_object)
