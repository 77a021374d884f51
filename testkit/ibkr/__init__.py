"""The Interactive Brokers test kit.

tws.py          a fake TWS / IB Gateway on a real socket, speaking the TWS API (wire.py)
wire.py         the TWS API framing and message fields, server side
replay.py       scenario files of TWS callbacks (tests/ibkr/*.json) → the gateway; the contract harness
paper_check.py  the live paper-account round trip (tests_live/, rehearsed against the fake)
"""
