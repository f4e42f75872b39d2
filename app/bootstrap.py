"""Start-up tasks: the first admin from APP_ADMIN_USERNAME / APP_ADMIN_PASSWORD."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from app.auth.service import ensure_admin
from app.config import Settings

log = logging.getLogger("app.bootstrap")


def ensure_initial_admin(factory: sessionmaker[Session], settings: Settings) -> None:
    if not settings.app_admin_username or settings.app_admin_password is None:
        return
    with factory() as session, session.begin():
        created = ensure_admin(
            session,
            username=settings.app_admin_username,
            password=settings.app_admin_password.get_secret_value(),
        )
    if created:
        log.info("created the initial admin user", extra={"username": settings.app_admin_username})
