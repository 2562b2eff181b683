"""Pages of the exchange with partner funds on other servers: the fund administrator's
list of partner funds and its own key line; the packets a referral's staff download; and
*Import a packet*, where a packet is checked, previewed, then imported."""

import io
import shlex
from datetime import date

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from ..auth import refused
from ..auth.guard import role_required
from ..auth.models import Role
from ..cases.access import get_application_or_404
from ..cases.categories import CATEGORY_FIELDS, detail_text
from ..core.extensions import db, reading
from ..core.support import Category
from ..core.work import perform
from ..reviews import network_check
from . import bp, exchange, keys, packet_holds, packets, partner_checks
from . import referrals as services
from .forms import AskPartnerForm, HoldForm, PacketForm, PartnerForm
from .models import Referral

ROLES = services.REFERRAL_ROLES


def _actor():
    return current_user._get_current_object()


def _attachment(data, name):
    response = send_file(
        io.BytesIO(data),
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=name,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# Partner funds ------------------------------------------------------------------------


@bp.get("/fund/partners")
@role_required(Role.ADMIN)
def partners():
    """The fund's key line and fingerprint to give partners, and its partner funds."""
    fund = exchange.fund_of(current_user)
    own = keys.current_key(fund)
    return render_template(
        "network/partners.html",
        fund=fund,
        own=own,
        line=keys.key_line(fund, own) if own else None,
        spoken=keys.spoken,
        partners=keys.partners(fund),
        form=refused.restore(PartnerForm(formdata=None)),
        # Named: on a server of several funds, the command asks which one.
        command=f"flask hrdfund network-keys --fund {shlex.quote(fund.name)}",
    )


@bp.post("/fund/partners")
@role_required(Role.ADMIN)
def register_partner():
    """Register a partner fund on another server, or its new key."""
    form = PartnerForm()
    back = url_for("network.partners", _anchor="new-partner")
    if form.validate_on_submit():
        done = perform(
            keys.register_partner,
            _actor(),
            exchange.fund_of(current_user),
            form.name.data,
            form.key_line.data,
            form.fingerprint.data,
            revoke=form.revoke.data,
            refused=keys.PartnerError,
        )
        if done.ok:
            flash(_("%(name)s is registered with its key.", name=done.value.name), "info")
            return redirect(url_for("network.partners"))
        form.form_errors.append(done.words)
    return refused.refuse(form, to=back)


# Packets out --------------------------------------------------------------------------


def _referral_or_404(uid):
    referral = db.session.execute(
        sa.select(Referral).where(Referral.uid == uid)
    ).scalar_one_or_none()
    if referral is None or not services.may_open(referral, current_user):
        abort(404)
    return referral


def _packet_out(service, *args):
    done = perform(service, _actor(), *args, refused=exchange.ExchangeError)
    if not done.ok:
        return None, done.words
    return _attachment(*done.value), None


@bp.get("/network/referrals/<uid>/packet")
@role_required(*ROLES)
def referral_packet(uid):
    """The referral packet for a partner fund on another server, as a file."""
    referral = _referral_or_404(uid)
    response, words = _packet_out(exchange.referral_packet, referral)
    if response is None:
        flash(words, "error")
        return redirect(url_for("network.referral", uid=uid))
    return response


@bp.get("/network/referrals/<uid>/answer-packet")
@role_required(*ROLES)
def answer_packet(uid):
    """The answer packet for the partner fund that referred the case, as a file."""
    referral = _referral_or_404(uid)
    response, words = _packet_out(exchange.answer_packet, referral)
    if response is None:
        flash(words, "error")
        return redirect(url_for("network.referral", uid=uid))
    return response


def ask_partner_form(application):
    """The form asking a partner fund about the case, or None when the fund has none."""
    partners = exchange.partner_funds_of(application.fund)
    if not partners:
        return None
    form = AskPartnerForm(formdata=None)
    form.partner.choices = [SelectChoice("", _("Choose a partner fund"))] + [
        SelectChoice(p.uid, p.name) for p in partners
    ]
    return form


@bp.post("/applications/<uid>/ask-partner")
@role_required(*ROLES)
def ask_partner(uid):
    """The duplicate-check packet for a partner fund on another server, as a file."""
    application = get_application_or_404(uid, current_user)
    partners = {p.uid: p for p in exchange.partner_funds_of(application.fund)}
    form = AskPartnerForm()
    form.partner.choices = [SelectChoice(u, p.name) for u, p in partners.items()]
    if form.validate_on_submit():
        response, words = _packet_out(
            partner_checks.ask_partner, application, partners.get(form.partner.data)
        )
        if response is not None:
            return response
        flash(words, "error")
    else:
        flash(_("Choose a partner fund."), "error")
    return redirect(url_for("cases.case", uid=uid, _anchor="network-check"))


# Packets in ---------------------------------------------------------------------------


@bp.get("/network/packets")
@role_required(*ROLES)
def packets_page():
    """Import a packet: the form."""
    return render_template("network/import.html", form=refused.restore(PacketForm(formdata=None)))


def _refusal_words(exc):
    return exc.words if isinstance(exc, packets.PacketRefused) else str(exc)


@bp.post("/network/packets")
@role_required(*ROLES)
def import_packet():
    """Check a packet (every check, nothing stored) and show what it brings; it waits,
    encrypted, for the importer to confirm."""
    form = PacketForm()
    back = url_for("network.packets_page")
    with reading():
        valid = form.validate_on_submit()
        if valid:
            data = form.file.data.stream.read()
            try:
                opened = exchange.check_packet(data, exchange.fund_of(current_user))
            except (packets.PacketRefused, exchange.ExchangeError) as exc:
                form.file.errors.append(_refusal_words(exc))
                valid = False
            else:
                preview = _preview(opened)
    if not valid:
        return refused.refuse(form, to=back)
    token = packet_holds.hold_packet(data, current_user)
    hold = HoldForm(formdata=None, token=token)
    return render_template("network/import_preview.html", hold=hold, **preview)


def _preview(opened):
    """What the preview page shows of a packet: only what importing would store."""
    body = opened.body
    view = {"opened": opened, "body": body, "kind": opened.kind}
    if opened.kind == packets.REFERRAL:
        view["category_fields"] = CATEGORY_FIELDS[Category(body["category"])]
        view["detail_text"] = detail_text
    elif opened.kind == packets.ANSWER:
        view["referral"] = exchange.answered_referral(opened)
    elif opened.kind == packets.DUPLICATE_ASK:
        view["since"] = partner_checks.answered_since(body)
    elif opened.kind == packets.DUPLICATE_ANSWER:
        view["case"] = partner_checks.asked_case(opened)
    return view


def _month(text):
    """The first day of a month given as YYYY-MM."""
    return date.fromisoformat(text + "-01")


@bp.post("/network/packets/confirm")
@role_required(*ROLES)
def confirm_import():
    """Import the packet held for the preview, checking it all again first."""
    form = HoldForm()
    if not form.validate_on_submit():
        abort(400)
    token = form.token.data
    data = packet_holds.held_packet(token, current_user)
    if data is None:
        flash(_("The packet waited too long: choose its file again."), "error")
        return redirect(url_for("network.packets_page"))
    # Check and clean its documents with no write transaction open (cleaning is slow),
    # then check it all again and import it in one.
    try:
        with reading():
            opened = exchange.check_packet(data, exchange.fund_of(current_user))
        cleaned = exchange.clean_documents(opened)
    except (packets.PacketRefused, exchange.ExchangeError) as exc:
        packet_holds.drop_hold(token)
        flash(_refusal_words(exc), "error")
        return redirect(url_for("network.packets_page"))
    done = perform(
        exchange.check_and_import,
        _actor(),
        data,
        cleaned=cleaned,
        refused=(packets.PacketRefused, exchange.ExchangeError),
    )
    packet_holds.drop_hold(token)
    if not done.ok:
        flash(_refusal_words(done.refusal), "error")
        return redirect(url_for("network.packets_page"))
    kind, value = done.value
    if kind == packets.REFERRAL:
        flash(_("Imported: the referral waits for your fund's answer."), "info")
        return redirect(url_for("network.referral", uid=value.uid))
    if kind == packets.ANSWER:
        flash(_("Imported: the referral shows the partner fund's answer."), "info")
        return redirect(url_for("network.referral", uid=value.uid))
    if kind == packets.DUPLICATE_ASK:
        return _attachment(*value)
    case, matches = value
    return render_template(
        "network/partner_answer.html",
        case=case,
        matches=[(network_check.NetworkWord(m["word"]), _month(m["month"])) for m in matches],
        words=network_check.WORD_LABELS,
    )
