"""Carries the request id from the code that enqueues a task into the task's logs."""

from contextvars import Token

from celery.signals import before_task_publish, task_postrun, task_prerun

from core.context import new_request_id, request_id_var

_tokens: dict[str, Token[str | None]] = {}


@before_task_publish.connect
def _stamp_request_id(headers=None, **kwargs) -> None:
    if headers is not None and "request_id" not in headers:
        headers["request_id"] = request_id_var.get() or new_request_id()


@task_prerun.connect
def _restore_request_id(task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, "request_id", None)
    if request_id is None and request is not None:
        request_id = (getattr(request, "headers", None) or {}).get("request_id")
    _tokens[task_id] = request_id_var.set(request_id or new_request_id())


@task_postrun.connect
def _clear_request_id(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        request_id_var.reset(token)
