"""Who a single sign-on signs in: the technician with the provider's email address, made
on their first sign-in where `oidc_create_technicians` allows it; their admin right and
teams follow their groups where `oidc_admin_group` and `oidc_team_groups` say so."""

from __future__ import annotations

import contextlib
import secrets

from ..errors import Conflict, NotFound
from ..handoff import TeamStore
from ..settings import Settings
from ..technicians import AccountDisabled, Accounts, Technician, TechnicianStore
from .oidc import Identity, SignOnRefused

# Acts on an admin's behalf for the directory (the audit log names the technician acted
# for, with the command line's or request's actor as the record's actor).
_DIRECTORY = Technician(0, "", "single sign-on", is_admin=True)


class SignOn:
    def __init__(self, settings: Settings, technicians: TechnicianStore, accounts: Accounts,
                 teams: TeamStore) -> None:
        self._settings = settings
        self._technicians = technicians
        self._accounts = accounts
        self._teams = teams

    async def technician(self, identity: Identity) -> Technician:
        settings = self._settings
        try:
            technician = await self._technicians.by_email(identity.email)
        except NotFound:
            if not settings.oidc_create_technicians:
                raise SignOnRefused(f"No technician has the email address {identity.email}.",
                                    code="sso_unknown") from None
            # A password nobody knows: this technician signs in through the provider.
            technician = await self._technicians.add(identity.email, identity.name,
                                                     secrets.token_urlsafe(32))
        if technician.disabled:
            raise AccountDisabled("This account is disabled. Ask your administrator.")
        if settings.oidc_admin_group:
            admin = settings.oidc_admin_group in identity.groups
            if admin != technician.is_admin:
                with contextlib.suppress(Conflict):  # the last admin stays one
                    await self._accounts.update(_DIRECTORY, technician.id, admin=admin)
        if settings.oidc_team_groups:
            for team in await self._teams.all():
                member = technician.id in team.member_ids
                if team.name in identity.groups and not member:
                    await self._teams.add_member(team.id, technician.id)
                elif team.name not in identity.groups and member:
                    await self._teams.remove_member(team.id, technician.id)
        return await self._technicians.get(technician.id)
