"""The service client (snapbook.client.service) against the sandbox's service routes (issue 12, "done means").

A whole first payment through the library on both sides: the client generates a QR, the sandbox
pays it and posts the signed notification to a plain receiver (which verifies the HMAC itself),
and the client's query then reads it paid. Then a Senmo balance inquiry.
"""

from __future__ import annotations

import json

import pytest
from test_sandbox_services import BALANCE, CLIENT, GENERATE, PARTNER, QUERY, SECRET, Receiver, new_ref

from snapbook.client.service import ServiceClient
from snapbook.errors import SnapResponseError
from snapbook.sandbox import Sandbox, SandboxConfig


@pytest.fixture
def sandbox(private_key):
    with Sandbox(SandboxConfig(notify_backoff=0.05)) as sb:
        sb.register(CLIENT, private_key.public_key(), secret=SECRET, partner_id=PARTNER)
        yield sb


def _client(sandbox, private_key, *, channel_id: str = "QR004", product: str = "payment") -> ServiceClient:
    """The merchant's service client, registered as CLIENT/PARTNER with SECRET in the sandbox."""
    return ServiceClient(
        sandbox.base_url,
        CLIENT,
        private_key,
        SECRET,
        partner_id=PARTNER,
        channel_id=channel_id,
        token_url=sandbox.token_url(product),
    )


def test_generate_pay_notification_query_through_the_service_client(sandbox, private_key):
    receiver = Receiver([500])  # the first delivery fails: the sandbox retries
    try:
        with _client(sandbox, private_key) as client:
            ref = new_ref()
            made = client.post(
                GENERATE,
                {
                    "partnerReferenceNo": ref,
                    "amount": {"value": "25000.00", "currency": "IDR"},
                    "additionalInfo": {"callbackUrl": receiver.url},
                },
            )
            assert made.response_code == "2004700" and made.data["partnerReferenceNo"] == ref
            query = {
                "originalReferenceNo": made.data["referenceNo"],
                "originalPartnerReferenceNo": ref,
                "serviceCode": "47",
            }
            assert client.post(QUERY, query).data["latestTransactionStatus"] == "01"

            paid = sandbox.pay(made.data["referenceNo"], issuer="BANKX")
            assert paid["notification"]["delivered"] and len(paid["notification"]["attempts"]) == 2

            status = client.post(QUERY, query)
            assert status.response_code == "2005100" and status.data["latestTransactionStatus"] == "00"
            assert status.data["paidTime"] and status.data["amount"] == {
                "value": "25000.00",
                "currency": "IDR",
            }

            with pytest.raises(SnapResponseError) as unknown:
                client.post(QUERY, {**query, "originalReferenceNo": "NOSUCH1"})
            assert unknown.value.response_code == "4045101"
            log = client.log.to_dataframe()
    finally:
        receiver.close()

    assert len(receiver.received) == 2 and all(receiver.verifies(n) for n in receiver.received)
    note = json.loads(receiver.received[-1]["body"])
    assert note["originalReferenceNo"] == made.data["referenceNo"] and note["latestTransactionStatus"] == "00"
    # the client's log and the sandbox's journal saw the same calls, by X-EXTERNAL-ID
    rows = [e for e in sandbox.journal if e.service in ("47", "51")]
    assert [e.response_code for e in rows] == ["2004700", "2005100", "2005100", "4045101"]
    assert set(log["external_id"].dropna()) >= {e.external_id for e in rows}
    assert SECRET not in log.to_csv()


def test_senmo_balance_through_the_service_client(sandbox, private_key):
    with _client(sandbox, private_key, channel_id="api", product="disbursement") as client:
        answer = client.post(BALANCE, {"accountNo": "1234567890", "balanceType": "cash"})
    assert answer.response_code == "2001100"
    assert answer.data["accountInfos"][0]["availableBalance"]["currency"] == "IDR"


def test_snapbooks_own_receiver_verifies_the_sandboxs_notification(sandbox, private_key):
    """Both ends of issue 13's payment notebook: the sandbox pays and notifies, NotificationReceiver verifies."""
    from snapbook.receiver import NotificationReceiver

    with NotificationReceiver(SECRET) as receiver, _client(sandbox, private_key) as client:
        made = client.post(
            GENERATE,
            {
                "partnerReferenceNo": new_ref(),
                "amount": {"value": "10000.00", "currency": "IDR"},
                "additionalInfo": {"callbackUrl": receiver.url},
            },
        )
        paid = sandbox.pay(made.data["referenceNo"])
        assert paid["notification"]["delivered"]
        note = receiver.wait(timeout=10)
    assert note.verified and note.original_reference_no == made.data["referenceNo"]
    assert note.latest_transaction_status == "00"
    assert SECRET not in repr(note) + note._repr_html_()
