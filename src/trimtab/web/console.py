"""The console's Starlette routes under /ui: sign-in, sessions, CSRF and the error page.

Each page is a function of a `Page` (web/context.py). This module decides who is looking
(the session cookie's key, looked up in the key ring on every request, or open access
when keys are off), checks the CSRF token of every POST, and renders domain errors as
an error page with the status, the message and the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from trimtab.auth.keyring import key_hash
from trimtab.config import Config
from trimtab.errors import DomainError, Forbidden, Unauthenticated, error_body, gateway_error
from trimtab.store.errors import store_unavailable
from trimtab.types import OPEN_ACCESS, READERS, new_request_id
from trimtab.web import (
    admin,
    alerts,
    costs,
    data,
    evals,
    incidents,
    overview,
    requests,
    rollout,
    routes,
    slos,
)
from trimtab.web.context import Deps, Page, Viewer, read_form
from trimtab.web.render import STATIC, environment
from trimtab.web.session import COOKIE, SESSION_S, Session, Signer, load_secret

log = logging.getLogger(__name__)

Handler = Callable[[Page], Awaitable[Response]]
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


class _SignIn(Exception):
    """The page needs a signed-in reader: go to the sign-in page, saying why."""

    def __init__(self, why: str) -> None:
        self.why = why


class Console:
    def __init__(self, deps: Deps, secret: bytes) -> None:
        self._deps = deps
        self._signer = Signer(secret)
        self._env = environment()

    def routes(self) -> list[BaseRoute]:
        get, post = ["GET"], ["POST"]
        pages: list[tuple[str, Handler, list[str]]] = [
            ("/", overview.overview, get),
            ("/requests", requests.explorer, get),
            ("/requests/{request_id}", requests.detail, get),
            ("/requests/{request_id}/dataset", requests.add_to_dataset, post),
            ("/routes", routes.index, get),
            ("/routes/{name}", routes.route, get),
            ("/routes/{name}/diff", routes.diff, get),
            ("/routes/{name}/rollout", rollout.page, get),
            ("/routes/{name}/rollout/start", rollout.start, post),
            ("/routes/{name}/rollout/rollback", rollout.rollback, post),
            ("/routes/{name}/rollout/{move}", rollout.move, post),
            ("/evals", evals.index, get),
            ("/evals/runs/{run_id}", evals.run, get),
            ("/evals/bakeoff", evals.bakeoff, get),
            ("/slos", slos.index, get),
            ("/costs", costs.index, get),
            ("/admin/keys", admin.keys, get),
            ("/admin/keys/create", admin.create_key, post),
            ("/admin/keys/{key_id}/revoke", admin.revoke_key, post),
            ("/admin/audit", admin.audit, get),
            ("/alerts", alerts.index, get),
            ("/incidents", incidents.index, get),
            ("/incidents/{incident_id}", incidents.detail, get),
            ("/incidents/{incident_id}/note", incidents.note, post),
            ("/incidents/{incident_id}/contain/{action}", incidents.contain, post),
            ("/incidents/{incident_id}/severity", incidents.severity, post),
            ("/incidents/{incident_id}/postmortem", incidents.postmortem, post),
            ("/incidents/{incident_id}/rule", incidents.rule, post),
            ("/incidents/{incident_id}/{move}", incidents.move, post),
            ("/alerts/{alert_id}/ack", alerts.acknowledge, post),
            ("/alerts/silences", alerts.silence, post),
            ("/alerts/silences/{silence_id}/expire", alerts.expire, post),
            ("/data/series", data.series, get),
        ]
        inner: list[BaseRoute] = [
            Route(path, self._page(handler), methods=methods) for path, handler, methods in pages
        ]
        inner += [
            Route("/login", self.sign_in_form, methods=get),
            Route("/login", self.sign_in, methods=post),
            Route("/logout", self.sign_out, methods=post),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        home = Route("/ui", self._page(overview.overview), methods=get)
        return [home, Mount("/ui", routes=inner)]

    # -- sessions ------------------------------------------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self._signer.load(request.cookies.get(COOKIE))

    def _viewer(self, request: Request) -> tuple[Viewer, Session | None]:
        """The viewer and, when the session is new, the session to set as a cookie."""
        session = self._session(request)
        keys = self._deps.keys
        if not keys.enabled:  # open, as the API is; a session still carries a CSRF token
            fresh = None if session is not None else self._signer.new("")
            token = session or fresh
            assert token is not None
            return Viewer(OPEN_ACCESS, token.csrf, keys_on=False), fresh
        if session is None or not session.digest:
            raise _SignIn("")
        try:
            principal = keys.by_digest(session.digest)
        except Unauthenticated as exc:
            raise _SignIn(f"{exc.message}: sign in again") from None
        if principal.role not in READERS:
            raise _SignIn(f"a key with role '{principal.role}' may not read the console")
        return Viewer(principal, session.csrf, keys_on=True), None

    def _cookie(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            self._signer.dump(session),
            max_age=SESSION_S,
            path="/ui",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    # -- pages ---------------------------------------------------------------------------

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            rid = new_request_id()
            fresh: Session | None = None
            try:
                viewer, fresh = self._viewer(request)
                page = Page(request, viewer, self._deps, rid, self._env)
                if request.method == "POST":
                    page.form = await read_form(request)
                    if page.form.get("csrf") != viewer.csrf or not viewer.csrf:
                        raise Forbidden(
                            "this form's CSRF token is missing or belongs to another session; "
                            "reload the page and try again",
                            code="csrf_failed",
                        )
                response = await handler(page)
            except _SignIn as exc:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                where = f"/ui/login?next={quote(target)}"
                if exc.why:
                    where += f"&why={quote(exc.why)}"
                response = RedirectResponse(where, 303)
            except DomainError as exc:
                response = self._error(request, exc, rid)
            except Exception as exc:  # a store outage: this page's 503, else LastResort's 500
                outage = store_unavailable(exc)
                if outage is None:
                    raise
                log.warning("console %s: %s (request id %s)", request.url.path, outage, rid)
                response = self._error(request, outage, rid)
            if fresh is not None:
                self._cookie(response, request, fresh)
            response.headers.update(_SECURITY_HEADERS)
            return response

        return endpoint

    def _error(self, request: Request, exc: DomainError, rid: str) -> Response:
        err = gateway_error(exc)
        if request.url.path.startswith("/ui/data/"):
            return Response(
                error_body(err, "openai", rid),
                err.status,
                {"x-trimtab-request-id": rid},
                media_type="application/json",
            )
        html = self._env.get_template("error.html.j2").render(
            status=err.status, code=err.code, message=err.message, param=err.param,
            request_id=rid, viewer=None, path=request.url.path,
        )  # fmt: skip
        return HTMLResponse(html, err.status, {"x-trimtab-request-id": rid, **_SECURITY_HEADERS})

    # -- signing in and out --------------------------------------------------------------

    def _login_page(
        self, request: Request, session: Session, message: str | None, status: int = 200
    ) -> Response:
        next_path = _safe_next(request.query_params.get("next"))
        html = self._env.get_template("login.html.j2").render(
            csrf=session.csrf, next=next_path, message=message, viewer=None,
            path=request.url.path, request_id=None,
        )  # fmt: skip
        response = HTMLResponse(html, status, _SECURITY_HEADERS)
        self._cookie(response, request, session)
        return response

    async def sign_in_form(self, request: Request) -> Response:
        if not self._deps.keys.enabled:
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        session = self._session(request)
        anonymous = session if session is not None else self._signer.new("")
        return self._login_page(request, anonymous, request.query_params.get("why"))

    async def sign_in(self, request: Request) -> Response:
        session = self._session(request)
        form = await read_form(request)
        if session is None or form.get("csrf") != session.csrf:
            fresh = self._signer.new("")
            why = "the sign-in form had expired; try again"
            return self._login_page(request, fresh, why, 403)
        key = (form.get("key") or "").strip()
        if not self._deps.keys.enabled:
            return RedirectResponse(_safe_next(form.get("next")), 303)
        try:
            if not key:
                raise Unauthenticated("enter an API key", code="missing_api_key")
            principal = self._deps.keys.by_digest(key_hash(key))
            if principal.role not in READERS:
                raise Forbidden(
                    f"a key with role '{principal.role}' may not read the console; "
                    "sign in with a viewer, operator or admin key"
                )
        except DomainError as exc:
            return self._login_page(request, session, exc.message, gateway_error(exc).status)
        log.info("console sign-in: key %s (tenant %s)", principal.key_id, principal.tenant)
        response = RedirectResponse(_safe_next(form.get("next")), 303)
        self._cookie(response, request, self._signer.new(key_hash(key)))
        return response

    async def sign_out(self, request: Request) -> Response:
        session = self._session(request)
        form = await read_form(request)
        if session is None or form.get("csrf") != session.csrf:
            return RedirectResponse("/ui/login", 303)
        response = RedirectResponse("/ui/login", 303)
        response.delete_cookie(COOKIE, path="/ui")
        return response


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path, never another site."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


def console_secret(config: Config) -> bytes:
    """The install's session-signing secret: a file beside the spill file."""
    spill = Path(config.telemetry.spill_path)
    return load_secret(spill.with_name(spill.stem + ".console-secret"))
