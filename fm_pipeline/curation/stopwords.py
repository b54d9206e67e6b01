"""Per-language stop words for Gopher's "has at least two stop words" rule.

Short hand-written lists of the most frequent function words, enough to tell running prose from
keyword lists, menus and tables. A language without a list gets no stop-word rule at all: judging
Arabic or an unknown language by English stop words would reject good text for the wrong reason.

Tokens are those of `fm_pipeline.curation.words.split_words`, so Chinese and Japanese lists hold
single characters (every Han or Kana character is a token there) and Thai has no list (its tokens
are single letters, too small to be words). Korean particles are written onto the word they mark
(사람은, 권리를), so a Korean token also counts when it ends in a common particle.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice, repeat

_LISTS: dict[str, str] = {
    "en": "the be to of and a an in that have i it for not on with he as you do at this but his by from they we "
    "her she or will my one all would there their is are was were has been",
    "es": "de la que el en y a los se del las un por con no una su para es al lo como más o pero sus le ha me si "
    "sin sobre este ya entre cuando todo esta ser son",
    "fr": "de la le et les des en un du une que est pour qui dans a par plus pas au sur ne se ce il sont avec ou "
    "son aux à elle nous vous leur",
    "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus "
    "er hat dass sie nach wird bei einer um am sind noch wie einem über so zum oder",
    "pt": "de a o que e do da em um para é com não uma os no se na por mais as dos como mas ao ele das à seu sua "
    "ou ser quando também nos já está pelo pela",
    "it": "di e il la che è per un in del non una della a i le si da con al lo gli dei delle come ma più nel alla "
    "sono anche ha se o nella questo suo ogni",
    "nl": "de het een en van in is dat op te zijn met voor niet aan er om ook als bij door of die dit wordt worden "
    "naar maar heeft tot uit zij hij ze",
    "ru": "и в не на что с по как он к это из у за от о же для то все так его но она был бы или при только до "
    "их также быть",
    "uk": "і й в у на що з не до та за як це від по для а він його її або при із чи так але є був вони бути має",
    "bg": "и на в да се за е от с не по са че си до при като ще това или които която който към но има всеки без",
    "pl": "i w na z się nie do to że jest o a jak po co tak za od ale przez dla jego być lub czy jej oraz także ich "
    "ze we",
    "cs": "a v se na je že s z o do to i k ve pro by jako ale za jsou po jeho nebo byl které který která při od "
    "tak být své jejich",
    "sk": "a v sa na je že s z o do to i k vo pre by ako ale za sú po jeho alebo bol ktoré ktorý ktorá pri od tak "
    "byť svoje ich",
    "sl": "in je v se na da za so z ki s pa ne bi o tudi pri do kot ali to po ter iz od jih ga ima biti",
    "hr": "i je u da se na za su s od o ne a koji koja koje kao iz li ili do te pa po bi biti ima sve što",
    "tr": "ve bir bu da de için ile olarak çok daha gibi en o ne ki mi ya veya her kadar olan sonra ancak hiçbir "
    "şu değil ise göre diğer olduğu hem",
    "vi": "và của là có được trong cho các những với không một này đã để khi cũng từ đến như về mọi theo hay "
    "hoặc tại sự bị thì mà nên vào",
    "id": "yang dan di ke dari untuk dengan ini itu dalam tidak pada adalah atau akan oleh sebagai juga ada "
    "karena setiap mereka bahwa telah tersebut bagi secara dapat",
    "sw": "na ya wa kwa za la katika ni kama cha au hii kuwa vya zake yake kila bila hiyo pia lakini huo ambao ambayo",
    "sv": "och i att det som en på är av för med till den har de inte om ett han men var jag sig från vi så kan "
    "eller hans sin skall ska alla",
    "da": "og i at det en til er som på de med han af for ikke der var den har et sig fra om eller hans sin skal "
    "alle kan vil",
    "no": "og i det på som er en til å av for med at har den ikke de om et seg fra han eller hans sin skal alle "
    "kan vil var",
    "fi": "ja on ei se että hän oli sen kun niin mutta tai joka ovat olla myös kuin jos sekä tämä mikä jotka "
    "hänen sitä ne vain kaikki kanssa mukaan",
    "et": "ja on ei et see oma ka kui mis aga või oli tema nad mida selle kes ning nii ole siis kõik seda ta võib kas",
    "lv": "un ir uz ar par no kas ka lai ko vai to tā bet kā arī tas pie nav būt viņa viņš savu savas",
    "lt": "ir kad į su yra iš ar o bet kaip tai jo jos be prie už apie savo tik kurie kuris kuri nuo taip būti "
    "tačiau dėl per nei",
    "hu": "a az és hogy nem is egy meg de van csak ki mint már el be fel vagy minden sem volt lesz ez azt ha "
    "kell mert pedig való szerint",
    "ro": "și de la în a cu pe care nu din se o un că pentru sau este fi mai al ale sa sale fără ca prin orice "
    "lui acest sunt au",
    "ca": "de la i el que a en les els per un una del amb no es és al com o dels seu seva ha més sense també",
    "el": "και το να της η του σε ο των τα με για που την στο τον από οι στην δεν είναι θα τις ή στα ως κάθε "
    "στη τους έχει",
    "he": "של את על לא הוא זה עם כל גם או היא כי אם אשר הם יש אל בין כמו רק אבל מן עד",
    "ar": "في من على أن إلى عن مع هذا هذه التي الذي ما لا أو كل كان قد ذلك هو هي بين إن ولا أي لم عند بعد حتى كما وفي",
    "fa": "و در به از که این را با است برای آن یک تا هر می بر یا شود باید هم بود نیز او هیچ خود های",
    "ur": "کے کی کا میں ہے اور کو سے پر یہ کہ ہیں نہیں بھی ایک اس جو ہو تھا کر یا ہر لئے لیے وہ",
    "hi": "के की का में है और को से पर यह कि हैं नहीं भी एक इस जो हो था कर या तथा लिए वह किसी उसे द्वारा",
    "bn": "এবং ও এই যে না করে জন্য থেকে হয় এর সে কোন তার সকল বা একটি হবে করা আর এ তাদের মধ্যে সঙ্গে কিন্তু যা সাথে",
    "ta": "ஒரு மற்றும் இந்த என்று அது அவர் உள்ள போன்ற அல்லது எந்த இது அந்த என ஆகிய வேண்டும் மூலம் இருந்து பற்றி ஆனால் எல்லா அனைத்து",
    "ko": "그리고 이 그 수 있다 것 및 하는 있는 등 이다 또는 또한 그러나 하고 한다 있으며 모든 때 더 위한 대한 통해 "
    "같은 할 한 된 되는 없는 아니라 그것 우리 저 나",
    # Single characters: split_words makes every Han and Kana character a token.
    "zh": "的 了 是 在 和 也 就 都 而 及 与 着 或 有 不 这 之 其 为 以 于 对 他 我 们 个 上 到 被 把 但 "
    "這 與 為 於 對 們 個",
    "ja": "の に は を た が で て と し れ さ も な か ら る だ す い う く こ そ",
}
_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "zsm": "id"}
_STOP_WORDS: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in _LISTS.items()}

# Korean particles written onto the word they mark (order does not matter to endswith).
KOREAN_PARTICLES = (
    "은", "는", "이", "가", "을", "를", "의", "에", "에서", "에게", "로", "으로", "와", "과", "도", "까지", "부터",
)  # fmt: skip
# Punctuation that whitespace tokens carry on their edges ("the," "(and" "「の」").
_EDGE_PUNCT = "\"'()[]{}<>.,;:!?¿¡«»“”„‘’‹›—–-…·、。，．！？：；（）「」『』《》〈〉【】।॥؟،؛۔"


def bare_word(token: str) -> str:
    """A token lowercased, without the punctuation on its edges: the form word lists are matched in."""
    return token.lower().strip(_EDGE_PUNCT)


def bare_words(tokens: Iterable[str]) -> Iterator[str]:
    """`bare_word` of each token, mapped in C (no Python call per token), for long texts."""
    return map(str.strip, map(str.lower, tokens), repeat(_EDGE_PUNCT))


def normalize_lang(lang: str | None) -> str:
    """ISO 639-1 code from tags such as "pt_BR", "zh-Hant" or "nb"; "" when there is none."""
    if not lang:
        return ""
    base = lang.replace("_", "-").split("-", 1)[0].lower()
    return _ALIASES.get(base, base)


def stop_words(lang: str | None) -> frozenset[str]:
    """The stop words of `lang`; empty when the language has no list (callers then skip the rule)."""
    return _STOP_WORDS.get(normalize_lang(lang), frozenset())


def count_stop_words(words: Iterable[str], lang: str | None, limit: int | None = None) -> int | None:
    """How many tokens are stop words of `lang` (case- and edge-punctuation-insensitive).

    None when the language has no list, so a caller can tell "no evidence" from "zero stop words".
    Counting stops at `limit`, which is all a threshold rule needs and keeps long documents cheap.
    For Korean a token ending in a common particle (사람은, 권리를) counts too.
    """
    code = normalize_lang(lang)
    vocab = _STOP_WORDS.get(code)
    if vocab is None:
        return None
    korean = code == "ko"
    hits = (w for w in bare_words(words) if w in vocab or (korean and len(w) > 1 and w.endswith(KOREAN_PARTICLES)))
    return sum(1 for _ in islice(hits, limit))
