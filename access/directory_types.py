"""How the console reads a directory user's groups, for the settings (console/directory.py) to name:
no models here, since settings import it before Django has loaded its apps."""

from __future__ import annotations

import ldap
import ldap.dn
from django_auth_ldap.config import LDAPGroupType, LDAPSearch


def normal_dn(dn: str) -> str:
    """A DN in one spelling: lower case, no spaces around the separators (`CN=Ops, DC=corp` is
    `cn=ops,dc=corp`), so a group named in the settings matches the directory's own spelling."""
    return ldap.dn.dn2str(ldap.dn.str2dn(dn.lower()))


class NestedMemberOfGroupType(LDAPGroupType):
    """Groups from the user's own memberOf attribute (Active Directory's back link, OpenLDAP's memberof
    overlay), then the memberOf of each of those groups, and so on: nested groups without searching
    the whole directory for `member=` values. Cycles end where a group was seen before."""

    def user_groups(self, ldap_user, group_search):
        found: dict[str, tuple] = {}
        pending = list(_values(ldap_user.attrs, "memberOf"))
        while pending:
            dn = pending.pop()
            if dn.lower() in found:
                continue
            results = LDAPSearch(dn, ldap.SCOPE_BASE, attrlist=[self.name_attr, "memberOf"]).execute(
                ldap_user.connection
            )
            # A group the user cannot read (or that no longer exists) still counts by its DN.
            info = results[0] if results else (dn.lower(), {})
            found[dn.lower()] = info
            pending.extend(_values(info[1], "memberOf"))
        return list(found.values())


def _values(attrs: dict, name: str) -> list[str]:
    """An attribute's values whatever case the server spells its name in."""
    return next((values for key, values in attrs.items() if key.lower() == name.lower()), [])
