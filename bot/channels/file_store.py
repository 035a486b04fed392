"""Files served by URL (GET /files/…) by any channel's HTTP server: charts Zalo fetches and
download links to exports (handlers/file_links.py names them). Kept in the database
(shared_files) through `ChannelServices`, so that whichever worker a fetch reaches serves it."""

from __future__ import annotations

from aiohttp import web

from handlers.channel_services import ChannelServices
from handlers.file_limits import LINK_MAX_AGE
from handlers.file_links import (
    DOCUMENT_SUFFIXES,
    DOWNLOAD_NAME,
    FILE_NAME,
    MEDIA_TYPES,
    TOKEN,
    download_url,
    new_token,
    stored_name,
    stored_type,
)

FILE_MAX_AGE = LINK_MAX_AGE  # seconds a chart or a file stays downloadable


class FileStore:
    """Files served for `max_age` seconds: charts at `{public_base}/files/<32 hex>.png`, exports at
    `{public_base}/files/<32 hex>/<file name>` (the name is the one a browser saves; the random
    part alone finds the file). They are kept in the database (shared_files), so that whichever
    worker, on whichever machine, a fetch reaches can serve them; the bots' housekeeping deletes
    them when they expire."""

    def __init__(self, services: ChannelServices, public_base: str,
                 max_age: float = FILE_MAX_AGE) -> None:
        self.services = services
        self.public_base = public_base.rstrip("/")
        self.max_age = max_age

    async def _put(self, data: bytes, suffix: str) -> str:
        """Store `data` under a new random name with `suffix`; returns the random part."""
        token = new_token()
        await self.services.put_file(stored_name(token, suffix), data, stored_type(suffix), self.max_age)
        return token

    async def put_png(self, data: bytes) -> str:
        """Store a chart; returns its public URL."""
        return f"{self.public_base}/files/{await self._put(data, 'png')}.png"

    async def put_document(self, data: bytes, filename: str) -> str:
        """Store an export or an invite sheet (`filename` ends in one of DOCUMENT_SUFFIXES);
        returns its download URL."""
        suffix = filename.rpartition(".")[2].lower()
        if suffix not in DOCUMENT_SUFFIXES:
            raise ValueError(f"not an export file: {filename!r}")
        return download_url(self.public_base, await self._put(data, suffix), filename)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /files/<32 hex>.png (a chart) or /files/<32 hex>/<name>.xlsx|.csv|.zip|.pdf|.png (an
        export or an invite sheet)."""
        token, download = request.match_info.get("name", ""), request.match_info.get("download")
        if download is None:
            name = token
        elif TOKEN.match(token) and DOWNLOAD_NAME.match(download):
            name = f"{token}.{download.rpartition('.')[2]}"
        else:
            raise web.HTTPNotFound()
        if not FILE_NAME.match(name) or (download is None and not name.endswith(".png")):
            raise web.HTTPNotFound()
        content = await self.services.get_file(name)
        if content is None:
            raise web.HTTPNotFound()
        headers = {"Content-Type": MEDIA_TYPES[name.rpartition(".")[2]]}
        if download is None:
            headers["Cache-Control"] = "public, max-age=86400"
        else:  # an export holds personal data: no shared cache keeps it
            headers["Cache-Control"] = "private, no-store"
            headers["Content-Disposition"] = f'attachment; filename="{download}"'
        return web.Response(body=content, headers=headers)

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/files/{name}", self.serve)
        router.add_get("/files/{name}/{download}", self.serve)
