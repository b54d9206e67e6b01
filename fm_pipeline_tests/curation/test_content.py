"""Content filters: each spam, adult and copyright rule fires with its exact reason, and ordinary news,
medical and place-name text passes."""

from __future__ import annotations

import json

import pytest

from fm_pipeline.curation.content import (
    ADULT_TERMS,
    CALLS_TO_ACTION,
    AdultContent,
    Copyright,
    Spam,
    _Terms,
    content_filters,
    detect_license,
    license_allowed,
)

NEWS = (
    "The city council voted on Tuesday to expand the bus network in the eastern districts, adding four "
    "routes and extending evening service until midnight. Officials said the plan, which will cost about "
    "12 million dollars over three years, responds to complaints from commuters who work late shifts at "
    "the hospital and the port. Several residents spoke in favour during the public hearing, while two "
    "members warned that fares might rise if federal grants are delayed. The first new routes are expected "
    "to open in September, after drivers have been hired and trained."
)
PUBMED = (
    "Sex differences in the prevalence of autoimmune disease are well documented. We examined sex "
    "differences in antibody responses among 412 patients recruited in Essex and West Sussex between 2015 "
    "and 2019, adjusting for age and treatment."
)


def run_prose(text: str, lang: str = "en", url: str | None = None) -> str | None:
    """The first reason any prose filter gives, as the filter stage records it."""
    for f in content_filters("prose"):
        reason = f.filter(text, lang, url)
        if reason:
            return reason
    return None


def test_news_and_medical_text_pass_every_filter() -> None:
    assert run_prose(NEWS, url="https://www.essexlive.news/news/local-news/buses-123") is None
    assert run_prose(PUBMED, url="https://pubmed.ncbi.nlm.nih.gov/12345678/") is None


@pytest.mark.parametrize(
    "url",
    ["https://www.sussex.ac.uk/research", "https://essex.gov.uk/", "https://adult-education.org/courses"],
)
def test_place_names_and_single_soft_words_in_hostnames_pass(url: str) -> None:
    assert AdultContent().filter(NEWS, "en", url) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://www.pornsite.example/video/1",
        "http://free-xxx.example.com",
        "https://sex.example.org/",
        "live-sexcam.example",
        "https://adult-cams.example.net/",
    ],
)
def test_adult_hostnames(url: str) -> None:
    assert AdultContent().filter(NEWS, "en", url) == "adult:url"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Free porn videos, hentai and sex cam shows updated daily. Join the best sex chat tonight.", "en"),
        ("무료 야동 모음, 성인방송 실시간 시청, 음란물 다운로드 사이트 안내", "ko"),
        ("最新色情网站，免费黄片和成人视频在线观看", "zh"),
        ("アダルト動画とエロ動画の無修正サンプルを毎日更新", "ja"),
        ("مواقع إباحي مجانية وأفلام سكس ومحتوى جنس صريح", "ar"),
        ("मुफ्त अश्लील सामग्री, पोर्न और सेक्स वीडियो यहाँ देखें", "hi"),
        ("Videos porno gratis y sexo explícito, chat erótico las 24 horas", "es"),
    ],
)
def test_adult_word_lists(text: str, lang: str) -> None:
    assert AdultContent().filter(text, lang, None) == "adult:words"


@pytest.mark.parametrize("terms", [*(ADULT_TERMS["en"] + t for t in ADULT_TERMS.values()), CALLS_TO_ACTION])
def test_term_lists_do_not_overlap(terms: tuple[str, ...]) -> None:
    """A phrase that also matches a shorter listed phrase would count twice toward a threshold."""
    for term in terms:
        assert _Terms(terms).count(term.lower()) == {term.lower(): 1}, term


def test_one_adult_mention_in_news_stays() -> None:
    text = NEWS + " Separately, lawmakers debated age checks for porn websites."
    assert AdultContent().filter(text, "en", None) is None


def test_spam_link_farm() -> None:
    links = " ".join(f"https://cheap-deals{i}.example.com/item" for i in range(12))
    assert Spam().filter(f"Best links: {links}", "en", None) == "spam:link_farm"
    many = "\n".join(f"Great offer number {i} at https://shop{i}.example.com" for i in range(25))
    assert Spam().filter(many, "en", None) == "spam:link_farm"


def test_spam_calls_to_action_in_several_languages() -> None:
    text = NEWS + " Click here to learn more! Buy now while stocks last. 지금 구매 하세요. 立即购买!"
    assert Spam().filter(text, "en", None) == "spam:call_to_action"
    two = NEWS + " Click here to learn more. Subscribe now."
    assert Spam().filter(two, "en", None) is None


def test_spam_keyword_stuffing() -> None:
    stuffed = " ".join(
        ["cheap", "insurance", "quotes", "best", "insurance", "online", "insurance", "deals", "compare"] * 8
    )
    assert Spam().filter(stuffed, "en", None) == "spam:keyword_stuffing"
    assert Spam().filter(NEWS, "en", None) is None


MIT_HEADER = """\
# Copyright (c) 2024 Jane Doe
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
"""
APACHE_HEADER = """\
/*
 * Copyright 2023 Example Corp.
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 */
"""
BSD3_HEADER = """\
// Copyright (c) 2010 The Authors. All rights reserved.
// Redistribution and use in source and binary forms, with or without
// modification, are permitted provided that the following conditions are met:
// * Neither the name of the copyright holder nor the names of its contributors may be used to
//   endorse or promote products derived from this software without specific prior written permission.
"""
GPL2_HEADER = """\
/* This program is free software; you can redistribute it and/or modify it under the terms of the
 * GNU General Public License as published by the Free Software Foundation; either version 2 of the
 * License, or (at your option) any later version. */
"""
CODE = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("# SPDX-License-Identifier: MIT\n" + CODE, "MIT"),
        ("<!-- SPDX-License-Identifier: MIT -->\n<p>hi</p>", "MIT"),
        ("// SPDX-License-Identifier: GPL-3.0-only\n" + CODE, "GPL-3.0-only"),
        ("/* SPDX-License-Identifier: (MIT OR Apache-2.0) */\n" + CODE, "(MIT OR Apache-2.0)"),
        (MIT_HEADER + CODE, "MIT"),
        (APACHE_HEADER + CODE, "Apache-2.0"),
        (BSD3_HEADER + CODE, "BSD-3-Clause"),
        (GPL2_HEADER + CODE, "GPL-2.0-or-later"),
        ("# Copyright 2020 Acme Inc. All rights reserved.\n" + CODE, "proprietary"),
        (CODE, None),
    ],
)
def test_detect_license(source: str, expected: str | None) -> None:
    assert detect_license(source) == expected


def test_license_expressions() -> None:
    assert license_allowed("MIT OR GPL-3.0-only")
    assert license_allowed("Apache-2.0 WITH LLVM-exception")
    assert not license_allowed("MIT AND GPL-3.0-only")
    assert not license_allowed("MPL-2.0")


def test_code_licence_policy() -> None:
    (code_filter,) = content_filters("code")
    assert code_filter.filter("# SPDX-License-Identifier: MIT\n" + CODE, "en", None) is None
    assert code_filter.filter(APACHE_HEADER + CODE, "en", None) is None
    gpl = "// SPDX-License-Identifier: GPL-3.0-only\n" + CODE
    assert code_filter.filter(gpl, "en", None) == "copyright:license_not_allowed:GPL-3.0-only"
    assert code_filter.filter(CODE, "en", None) == "copyright:no_license"
    proprietary = "# Copyright 2020 Acme Inc. All rights reserved.\n" + CODE
    assert code_filter.filter(proprietary, "en", None) == "copyright:license_not_allowed:proprietary"
    assert Copyright("code", require_license_for_code=False).filter(CODE, "en", None) is None
    assert Copyright("code", allowed_licenses={"MIT", "GPL-3.0-only"}).filter(gpl, "en", None) is None


@pytest.mark.parametrize(
    "notice",
    [
        "All rights reserved. No part of this publication may be reproduced without permission.",
        "© 2024 연합뉴스. 무단 전재 및 재배포 금지.",
        "版权所有，禁止转载。",
        "無断転載を禁じます。",
        "Todos los derechos reservados.",
        "Tous droits réservés.",
        "Alle Rechte vorbehalten.",
    ],
)
def test_prose_reservation_notices(notice: str) -> None:
    assert run_prose(NEWS + "\n" + notice) == "copyright:reservation_notice"
    assert Copyright("prose", drop_reserved_prose=False).filter(NEWS + "\n" + notice, "en", None) is None


def test_prose_profile_does_not_apply_licence_rules_and_code_skips_spam() -> None:
    assert run_prose(CODE) is None
    stuffed = "# SPDX-License-Identifier: MIT\n" + "x = x + x\n" * 100
    assert all(f.filter(stuffed, "en", None) is None for f in content_filters("code"))
    with pytest.raises(ValueError):
        content_filters("poetry")


def test_public_corpora_mostly_pass(shared_corpora) -> None:
    """News-like web pages, PubMed abstracts, contracts and the UDHR are not adult content or spam."""
    filters = [AdultContent(), Spam()]
    for path in (
        "web/common_crawl_en.jsonl",
        "domain/biomedical.jsonl",
        "domain/legal.jsonl",
        "multilingual/udhr.jsonl",
    ):
        for line in (shared_corpora / path).open(encoding="utf-8"):
            row = json.loads(line)
            lang = row.get("meta", {}).get("gold_lang", "en")
            url = row["id"] if row["id"].startswith("http") else None
            assert [f.filter(row["text"], lang, url) for f in filters] == [None, None], row["id"]


def test_site_copyright_line_is_page_chrome_not_a_reservation() -> None:
    footer = "© 2024 Example Media. All rights reserved. Privacy Policy | Terms of Use"
    assert run_prose(NEWS + "\n" + footer) is None
    assert run_prose(NEWS + "\nCopyright 2023 The Authors. All rights reserved.") is None
    assert run_prose(NEWS + "\n© 2024 연합뉴스. 무단 전재 및 재배포 금지.") == "copyright:reservation_notice"
