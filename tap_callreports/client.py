"""The base stream every vendor's streams share: URL, auth, retry policy, error sorting.

Every answer is sorted into three bins in `validate_response`: fine, retriable
(RetriableAPIError: 429 and 5xx as ratelimit.RateLimited, and a 401 that earned a new token) and fatal (FatalAPIError:
other 4xx) with the vendor's code/message/description/fields and the path, never a secret.
"""

from __future__ import annotations

import threading
import typing as t
from functools import cached_property
from http import HTTPStatus
from urllib.parse import ParseResult, urlsplit

import backoff
import requests
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams.rest import HTTPRequest, PageContext

from tap_callreports.auth import CallReportsAuth
from tap_callreports.conform import Conformer
from tap_callreports.errors import (
    AccountFull,
    CallReportsError,
    MalformedBodyError,
    StreamError,
    VendorRefused,
    unreachable_line,
)
from tap_callreports.ratelimit import RateLimited
from tap_callreports.redact import REGISTRY, is_signed_url
from tap_callreports.responses import dig, json_body, request_label, vendor_error_details
from tap_callreports.retry import (
    RETRIABLE_ERRORS,
    HostUnreachable,
    RetryPolicy,
    TokenRefreshed,
    connection_failure,
    host_of,
)
from tap_callreports.sdk_hooks import RESTStreamSDKHooks, whole_stream_batches

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_callreports.pagination import StableListing
    from tap_callreports.sdk_hooks import BatchConfig
    from tap_callreports.settings import Settings

#: Immediate tries after a 401 that earned a new token, within one try of the retry policy: under a
#: burst of revoked tokens most of a request's 401s are news of other requests' refusals.
TOKEN_RETRIES_PER_TRY = 20


def _with_token_retries(func: t.Callable) -> t.Callable:
    def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
        for _ in range(TOKEN_RETRIES_PER_TRY):
            try:
                return func(*args, **kwargs)
            except TokenRefreshed:
                continue
        return func(*args, **kwargs)

    return call


class JobJournal(t.Protocol):
    """Report jobs created on worker threads, waiting for the main thread to put them in a STATE."""

    pending: bool

    def record(self) -> None: ...


class RunServices(t.Protocol):
    """What the base stream takes of the run's services (`reportjobs.services.JobServices`)."""

    @property
    def unsaved(self) -> JobJournal: ...

    @property
    def message_writer(self) -> object: ...


class StreamHost(t.Protocol):
    """What a stream takes from the tap that makes it (`TapCallReports` is one): no stream knows the tap."""

    @property
    def settings(self) -> Settings: ...

    @property
    def job_services(self) -> RunServices: ...

    def authenticator_for(self, vendor: str) -> CallReportsAuth: ...


class CallReportsStream(RESTStreamSDKHooks):
    """Base stream: one per vendor subclasses it with its URL and authenticator."""

    #: "talkdesk", "zendesk" or "myreports": selects settings and the shared authenticator.
    vendor: t.ClassVar[str]
    #: One line telling the user what to do when the vendor refuses the credentials.
    auth_help: t.ClassVar[str] = "check the credentials"

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        self._local = threading.local()
        super().__init__(tap, *args, **kwargs)
        self.tap = t.cast("StreamHost", tap)
        #: The run's shared services (job engine, unsaved jobs, job records, writers), handed by the tap.
        self.services = self.tap.job_services

    # ---- configuration -------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.tap.settings

    @property
    def authenticator(self) -> CallReportsAuth:
        return self.tap.authenticator_for(self.vendor)

    @property
    def requests_session(self) -> requests.Session:
        # Report jobs run on worker threads; requests.Session is not thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    @property
    def timeout(self) -> float:  # type: ignore[override]
        return self.settings.request_timeout_seconds

    @property
    def http_headers(self) -> dict:
        return {"Accept": "application/json"}

    # ---- retry policy (the SDK's hooks) ------------------------------------------------------

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.of(self.settings)

    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        return self.retry_policy.wait_generator()

    def backoff_max_tries(self) -> int:
        return self.retry_policy.max_tries

    def backoff_jitter(self, value: float) -> float:
        return value  # jitter is applied by RetryPolicy, never to a Retry-After

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """The SDK's retry decorator without backoff's own log line: `backoff_handler` logs each
        retry once, with its reason."""
        return backoff.on_exception(
            self.backoff_wait_generator,
            RETRIABLE_ERRORS,  # the same failures RetryPolicy.call retries outside the SDK's loop
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=None,
        )(_with_token_retries(func))

    def backoff_handler(self, details: t.Mapping[str, t.Any]) -> None:
        exc = details.get("exception")
        response = getattr(exc, "response", None)
        what = (
            f"{response.status_code} for {request_label(response)}"
            if isinstance(response, requests.Response)
            else type(exc).__name__
        )
        self.logger.warning(
            "%s: retrying in %.1fs (attempt %d of %d) after %s",
            self.name,
            details.get("wait") or 0.0,
            details.get("tries", 0) + 1,
            self.backoff_max_tries(),
            what,
        )

    # ---- answers -------------------------------------------------------------------------

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if (
            status >= HTTPStatus.BAD_REQUEST
            and status != HTTPStatus.TOO_MANY_REQUESTS
            and status < 500
            and not self.may_authenticate(response.url)
        ):
            # A host our credentials are not for (signed storage, another host in a Location) was
            # sent none: its refusal says nothing about them.
            raise VendorRefused(
                f"{status} {response.reason} for {request_label(response)} on {host_of(response.url)}, "
                f"a host the tap sends no credentials to: {vendor_error_details(response)}",
                response,
            )
        if status == HTTPStatus.UNAUTHORIZED:
            why = self.authenticator.unauthorized(response)  # raises TokenRefreshed when a retry can help
            raise FatalAPIError(
                f"401 Unauthorized for {request_label(response)}: {vendor_error_details(response)}"
                f"{f' ({why})' if why else ''}; {self.auth_help}"
            )
        self.authenticator.authorized(response)
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RateLimited(
                f"{status} {response.reason} for {request_label(response)}: {vendor_error_details(response)}", response
            )
        if status >= HTTPStatus.BAD_REQUEST:
            hint = "; " + self.auth_help if status == HTTPStatus.FORBIDDEN else ""
            raise VendorRefused(
                f"{status} {response.reason} for {request_label(response)}: {vendor_error_details(response)}{hint}",
                response,
            )

    # ---- pages -----------------------------------------------------------------------------

    #: Where a page's records are: keys from the body's root to the list.
    records_path: t.ClassVar[tuple[str, ...]] = ()

    #: The list being read in passes until stable (`read_listing`): it sees every page parsed.
    listing: StableListing | None = None

    def parse_response(self, response: requests.Response) -> Iterable[dict]:
        body = json_body(response, self.name)
        records = dig(body, *self.records_path)
        if self.listing is not None and (records is None or isinstance(records, list)):
            self.listing.note(body)  # before the page: a read may end with it
            self.listing.page(records or [])
        if records is None:
            return
        if not isinstance(records, list):
            raise MalformedBodyError(
                self.name,
                f"the response to {request_label(response)} has no list at {'.'.join(self.records_path)}; "
                "the vendor changed its format; run again later, and report it to the vendor if it persists",
            )
        yield from records

    def new_listing(self) -> StableListing | None:
        """A list that can move while it is read returns its StableListing here (`read_listing`)."""
        return None

    def read_listing(self, context: Context | None, listing: StableListing) -> Iterable[dict]:
        """The SDK's paged read of the list as passes of `listing`, read again until one is stable."""
        self.listing = listing
        try:
            yield from listing.read(lambda: self.request_records(context), self.logger)
        finally:
            self.listing = None

    def get_http_request(self, *, page: PageContext) -> HTTPRequest:
        request = super().get_http_request(page=page)
        if isinstance(page.next_page_token, ParseResult):
            # A next link carries every parameter: requests would append ours a second time.
            request.url = self.followed_link(page.next_page_token.geturl())
            request.params = {}
        return request

    #: Host suffixes that are the vendor's own (a link there is the same API under another name).
    vendor_domains: t.ClassVar[tuple[str, ...]] = ()

    def followed_link(self, url: str) -> str:
        """Where a paging link the vendor gave is asked: on the configured API host as it is; on
        another host of the same vendor (`vendor_domains`: a host-mapped vs a canonical domain) as
        the same path and query on the configured API host, with the credentials; a link to any
        other host stops the stream (no credential goes there)."""
        if self.may_authenticate(url):
            return url
        link, api = urlsplit(url), urlsplit(self.url_base)
        host = (link.hostname or "").lower()
        if any(host == domain.lstrip(".") or host.endswith(domain) for domain in self.vendor_domains):
            return link._replace(scheme=api.scheme, netloc=api.netloc).geturl()
        raise StreamError(
            self.name,
            f"the vendor's paging link points to another host ({host_of(url)}), not the API "
            f"host {host_of(self.url_base)}: the tap sends no credentials there and stopped; the rows "
            f"read so far were emitted and the bookmark was not advanced; check {self.vendor}_api_url "
            "(a host-mapped domain), then run again",
        )

    # ---- requests outside the SDK's paging loop (report jobs, downloads) -------------------------

    def may_authenticate(self, url: str) -> bool:
        """Credentials go only to the vendor's own API host: never to a signed storage URL (it has
        its own credentials, and stores refuse two), another host in a Location, or a link that
        leaves the API."""
        return self.authenticator.belongs_to(url) and not is_signed_url(url)

    def send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, t.Any] | None = None,
        json: t.Any = None,
        stream: bool = False,
        allow_redirects: bool = True,
        context: Context | None = None,
        creates_job: bool = False,
        expected_status: int | None = None,
    ) -> requests.Response:
        """One request with the stream's retry policy, auth and error sorting; thread-safe. The
        Authorization header goes with it only when `url` is on the vendor's API host; redirects
        that requests follows drop it when they change host (requests' rebuild_auth).
        `creates_job`: a 429 means the account holds as many jobs as it allows; it raises
        AccountFull at once (the job engine waits for a slot) instead of being retried here.
        A Retry-After on an answer that passed is the caller's to read (`ratelimit.Backoff`).
        `expected_status`: an error status the caller asks for (a probe's 404), so its METRIC line
        says succeeded; it is still raised as the error it is."""
        authenticate = self.may_authenticate(url)

        def attempt() -> requests.Response:
            request = requests.Request(method, url, params=params, json=json, headers=self.http_headers)
            request.headers["User-Agent"] = self.user_agent
            prepared = self.requests_session.prepare_request(request)
            if authenticate:
                prepared = self.authenticator(prepared)
            else:
                prepared.headers.pop("Authorization", None)
            response = self.requests_session.send(
                prepared, timeout=self.timeout, allow_redirects=allow_redirects, stream=stream
            )
            self.log_request_duration(
                endpoint=self.path or urlsplit(url).path,
                response=response,
                context=context,
                extra_tags={"status": "succeeded"} if response.status_code == expected_status else None,
            )
            try:
                self.validate_response(response)
            except RateLimited as refused:
                response.close()
                if creates_job and refused.limited:
                    asked = refused.backoff.seconds if refused.backoff is not None else None
                    raise AccountFull(f"429 for {request_label(response)}", asked) from None
                raise
            except Exception:
                response.close()
                raise
            self.answered(response)
            return response

        return self.request_decorator(attempt)()

    # ---- records ---------------------------------------------------------------------------

    def get_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        try:
            yield from self.extract_records(context)
        except CallReportsError:
            raise
        except (FatalAPIError, RetriableAPIError, requests.RequestException) as exc:
            raise StreamError(self.name, self.explain_failure(exc)) from None

    def extract_records(self, context: Context | None) -> Iterable[dict[str, t.Any]]:
        """The stream's records; the default follows the SDK's request/paginate loop."""
        journal = self.services.unsaved
        listing = self.new_listing()
        records = self.request_records(context) if listing is None else self.read_listing(context, listing)
        for record in records:
            if journal.pending:  # report jobs created meanwhile go into a STATE at once
                journal.record()
            yield record

    # ---- records that conform to their SCHEMA (conform.py) --------------------------------------

    @property
    def maps_are_identity(self) -> bool:
        """No stream map and no flattening: the target gets the records and schema as the tap makes them."""
        maps = self.stream_maps
        return len(maps) == 1 and type(maps[0]) is SameRecordTransform and not maps[0].flattening_enabled

    def target_schema(self) -> dict:
        """The schema the target gets in SCHEMA messages: the map's (built from the catalog, and
        grown by the tap) when the only map is the identity; else the catalog's (the user's maps
        then decide what the target gets)."""
        return self.stream_maps[0].transformed_schema if self.maps_are_identity else self.effective_schema

    def new_conformer(self, text_checked: t.Iterable[str] = ()) -> Conformer:
        return Conformer(self.target_schema(), self.name, text_checked)

    @cached_property
    def conformer(self) -> Conformer:
        return self.new_conformer()

    def post_process(self, row: dict, context: Context | None = None) -> dict | None:
        return self.conformer.conform(row)

    def get_batches(self, batch_config: BatchConfig, context: Context | None = None) -> Iterable[t.Any]:
        return whole_stream_batches(self, batch_config, context)

    def explain_failure(self, exc: Exception) -> str:
        """A request that failed for good, in one line: what happened, then what to do. A host
        that could not be reached is said the same way for every vendor (errors.unreachable_line)."""
        if isinstance(exc, HostUnreachable):
            return unreachable_line(host_of(exc.url), exc.reason, exc.attempts, self.settings.naming_host(exc.url))
        if isinstance(exc, requests.RequestException):
            url = exc.request.url if exc.request is not None and exc.request.url else self.url_base
            reason = connection_failure(exc)
            if reason:
                return unreachable_line(host_of(url), reason, self.backoff_max_tries(), self.settings.naming_host(url))
            return (
                f"network error after {self.backoff_max_tries()} attempts: {type(exc).__name__} talking to "
                f"{host_of(url)}; run again later, or raise request_timeout_seconds or max_retries if it repeats"
            )
        message = REGISTRY.redact(str(exc.args[0]) if exc.args else type(exc).__name__)
        if isinstance(exc, RetriableAPIError):
            return f"gave up after {self.backoff_max_tries()} attempts: {message}; run again later or raise max_retries"
        return message
