"""Tests of ``zenith_protocol`` (a package so that test modules can share ``strategies``)."""
