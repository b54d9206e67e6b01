"""A seed page as the full HTML a crawler fetches: site chrome (cookie banner, navigation, related links,
newsletter box, footer) in the page's language around the article, for the WARC responses."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from tools.sample_corpus.documents import Page

# Site chrome for the HTML pages in the WARC file, per page language.
UI_STRINGS: dict[str, dict[str, Any]] = {
    "en": {
        "nav": ["Home", "News", "Guides", "Reviews", "About", "Contact"],
        "skip": "Skip to main content",
        "cookie": "We use cookies to improve your experience and to show you relevant ads. "
        "By continuing to browse, you agree to our use of cookies.",
        "accept": "Accept all",
        "manage": "Manage preferences",
        "published": "Published",
        "share": "Share this article",
        "related": "Related articles",
        "newsletter": "Subscribe to our newsletter",
        "newsletter_text": "Get our best stories in your inbox "
        "every Friday. No spam, unsubscribe at any time.",
        "subscribe": "Subscribe",
        "rights": "All rights reserved.",
        "privacy": "Privacy policy",
        "terms": "Terms of use",
    },
    "ko": {
        "nav": ["홈", "뉴스", "가이드", "리뷰", "소개", "문의"],
        "skip": "본문 바로가기",
        "cookie": "이 웹사이트는 더 나은 서비스 제공을 위해 쿠키를 사용합니다. "
        "계속 이용하시면 쿠키 사용에 동의하는 것으로 간주됩니다.",
        "accept": "모두 허용",
        "manage": "설정 관리",
        "published": "게시일",
        "share": "이 글 공유하기",
        "related": "관련 글",
        "newsletter": "뉴스레터 구독하기",
        "newsletter_text": "매주 금요일, 엄선한 글을 메일로 보내 "
        "드립니다. 언제든지 구독을 취소할 수 있습니다.",
        "subscribe": "구독",
        "rights": "무단 전재 및 재배포 금지.",
        "privacy": "개인정보처리방침",
        "terms": "이용약관",
    },
    "zh": {
        "nav": ["首页", "新闻", "指南", "评测", "关于我们", "联系我们"],
        "skip": "跳到主要内容",
        "cookie": "本网站使用 Cookie 来改善您的浏览体验。继续浏览即表示您同意我们使用 Cookie。",
        "accept": "全部接受",
        "manage": "管理偏好设置",
        "published": "发布于",
        "share": "分享本文",
        "related": "相关文章",
        "newsletter": "订阅我们的电子报",
        "newsletter_text": "每周五将精选文章发送到您的邮箱，可随时取消订阅。",
        "subscribe": "订阅",
        "rights": "版权所有。",
        "privacy": "隐私政策",
        "terms": "使用条款",
    },
    "ar": {
        "nav": ["الرئيسية", "أخبار", "أدلة", "مراجعات", "من نحن", "اتصل بنا"],
        "skip": "انتقل إلى المحتوى الرئيسي",
        "cookie": "نستخدم ملفات تعريف الارتباط لتحسين تجربتك. باستمرارك "
        "في التصفح فإنك توافق على استخدامنا لها.",
        "accept": "قبول الكل",
        "manage": "إدارة التفضيلات",
        "published": "نُشر في",
        "share": "شارك المقال",
        "related": "مقالات ذات صلة",
        "newsletter": "اشترك في نشرتنا البريدية",
        "newsletter_text": "احصل على أفضل المقالات في بريدك كل يوم جمعة، ويمكنك إلغاء الاشتراك في أي وقت.",
        "subscribe": "اشترك",
        "rights": "جميع الحقوق محفوظة.",
        "privacy": "سياسة الخصوصية",
        "terms": "شروط الاستخدام",
    },
    "ja": {
        "nav": ["ホーム", "ニュース", "ガイド", "レビュー", "運営者情報", "お問い合わせ"],
        "skip": "本文へスキップ",
        "cookie": "当サイトでは、利便性向上のためにCookieを使用しています。"
        "閲覧を続けることで、Cookieの使用に同意したものとみなされます。",
        "accept": "すべて許可",
        "manage": "設定を管理",
        "published": "公開日",
        "share": "この記事をシェア",
        "related": "関連記事",
        "newsletter": "ニュースレターを購読する",
        "newsletter_text": "毎週金曜日に、おすすめの記事をメールでお届けします。配信はいつでも停止できます。",
        "subscribe": "登録する",
        "rights": "無断転載を禁じます。",
        "privacy": "プライバシーポリシー",
        "terms": "利用規約",
    },
}

NAV_SLUGS = ("", "news/", "guides/", "reviews/", "about/", "contact/")


def render_html(page: Page, related: list[Page]) -> str:
    """A full page: cookie banner, navigation, the article, a related-links sidebar, newsletter and footer."""
    ui = UI_STRINGS[page.lang.split("+")[0]]
    e = html.escape
    direction = ' dir="rtl"' if page.lang == "ar" else ""
    host = urlsplit(page.url).netloc
    nav = "\n".join(
        f'      <li><a href="/{slug}">{e(label)}</a></li>'
        for slug, label in zip(NAV_SLUGS, ui["nav"], strict=True)
    )
    links = "\n".join(
        f'      <li><a href="{e(urlsplit(other.url).path)}">{e(other.title)}</a></li>' for other in related
    )
    article = []
    for block in page.body.split("\n\n"):
        lines = block.splitlines()
        if block.startswith("## "):
            article.append(f"<h2>{e(block[3:])}</h2>")
        elif all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{e(line[2:])}</li>" for line in lines)
            article.append(f"<ul>{items}</ul>")
        else:
            article.append("<p>" + "<br>\n".join(e(line) for line in lines) + "</p>")
    body = "\n      ".join(article)
    year = page.published[:4]
    return f"""<!DOCTYPE html>
<html lang="{page.lang.split("+")[0]}"{direction}>
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{e(page.title)} | {e(page.site)}</title>
  <link rel="canonical" href="{e(page.url)}">
  <link rel="stylesheet" href="/assets/css/site.min.css">
  <script async src="https://analytics.{host}/tag.js"></script>
</head>
<body>
  <a class="skip-link" href="#main">{e(ui["skip"])}</a>
  <div class="cookie-banner" role="dialog">
    <p>{e(ui["cookie"])}</p>
    <button type="button">{e(ui["accept"])}</button> <button type="button">{e(ui["manage"])}</button>
  </div>
  <header class="site-header">
    <a class="logo" href="/">{e(page.site)}</a>
    <nav class="main-nav">
     <ul>
{nav}
     </ul>
    </nav>
  </header>
  <main id="main">
    <article>
      <h1>{e(page.title)}</h1>
      <p class="byline">{e(ui["published"])} <time datetime="{page.published}">{page.published}</time></p>
      {body}
      <div class="share">{e(ui["share"])}: <a href="#">Facebook</a>
        <a href="#">X</a> <a href="#">E-mail</a></div>
    </article>
    <aside class="sidebar">
     <h2>{e(ui["related"])}</h2>
     <ul>
{links}
     </ul>
    </aside>
  </main>
  <section class="newsletter">
    <h2>{e(ui["newsletter"])}</h2>
    <p>{e(ui["newsletter_text"])}</p>
    <form action="/newsletter" method="post"><input type="email" name="email">
    <button type="submit">{e(ui["subscribe"])}</button></form>
  </section>
  <footer class="site-footer">
    <p>© {year} {e(page.site)}. {e(ui["rights"])}</p>
    <p><a href="/privacy">{e(ui["privacy"])}</a> · <a href="/terms">{e(ui["terms"])}</a></p>
  </footer>
</body>
</html>
"""
