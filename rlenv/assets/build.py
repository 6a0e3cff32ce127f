"""Rebuild the embedded model ``rlenv/assets/default_model`` from nothing but local files.

Three stages, each deterministic under a fixed seed::

    python -m rlenv.assets.build corpus    --out build/   # corpus.txt + the task prompt files
    python -m rlenv.assets.build tokenizer --out build/   # byte-level BPE trained on corpus.txt
    python -m rlenv.assets.build model     --out build/   # GPT-2-style LM trained on corpus.txt
    python -m rlenv.assets.build all       --out build/   # the three in a row
    python -m rlenv.assets.build extract-wordnet          # rewrite data/wordnet_examples.tsv.gz from
                                                          # /usr/share/wordnet (Debian's wordnet-base)

The corpus mixes four kinds of document, one per line, each ended by the EOS token in training:

- WordNet usage examples (real English; the extract ``data/wordnet_examples.tsv.gz`` that the repo
  carries, see ``data/WORDNET_LICENSE``; ``extract-wordnet`` rewrites it from WordNet 3.0's data files);
- generated product / place / media / service reviews of mixed sentiment, balanced by VADER
  into positive, negative and neutral thirds, so the untrained model is neutral on average;
- arithmetic statements ``a+b=c`` that are right most but not all of the time;
- keyword instructions ``Write a sentence with the word w: ...`` whose answer uses ``w`` only
  about half of the time.

The corpus and tokenizer builds take seconds and are checked byte for byte by the tests; the LM
training takes about twenty CPU minutes and records what it did in ``build_info.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent
DEFAULT_MODEL_DIR = ASSETS / "default_model"
DATA_DIR = ASSETS / "data"
WORDNET_DIR = Path("/usr/share/wordnet")  # only ``extract-wordnet`` reads it
WORDNET_EXTRACT = DATA_DIR / "wordnet_examples.tsv.gz"

SEED = 1234
EOS = "<|endoftext|>"
PAD = "<|pad|>"
KEYWORD_INSTRUCTION = "Write a sentence with the word {word}:"


# ---------------------------------------------------------------------------------------------------
# WordNet usage examples
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Synset:
    lex_file: int
    lemmas: tuple[str, ...]
    examples: tuple[str, ...]


_QUOTED = re.compile(r'"([^"]+)"')


def read_wordnet_data_files(wordnet_dir: Path = WORDNET_DIR) -> list[Synset]:
    """Every synset with at least one usage example, in file order (adj, adv, noun, verb), read from
    WordNet 3.0's ``data.*`` files. Only :func:`write_wordnet_extract` needs this."""
    synsets = []
    for part in ("adj", "adv", "noun", "verb"):
        path = wordnet_dir / f"data.{part}"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; extracting from WordNet needs its data files (apt-get install "
                "wordnet-base). Building the corpus does not: it reads the extract the repo carries"
            )
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # licence header
            fields, gloss = line.split(" | ", 1)
            parts = fields.split()
            word_count = int(parts[3], 16)
            lemmas = tuple(parts[4 + 2 * i].lower() for i in range(word_count))
            examples = tuple(_clean_sentence(q) for q in _QUOTED.findall(gloss))
            examples = tuple(e for e in examples if e)
            if examples:
                synsets.append(Synset(int(parts[1]), lemmas, examples))
    return synsets


# One synset per line: lexicographer file number, lemmas joined by spaces, examples joined by tabs.
# Cleaned examples hold no tab or newline (whitespace is collapsed) and lemmas no space (WordNet
# writes multi-word lemmas with underscores), so the format needs no quoting.
def write_wordnet_extract(synsets: Sequence[Synset], path: Path = WORDNET_EXTRACT) -> Path:
    """Write the synsets the corpus uses as a gzipped TSV with fixed gzip metadata (same bytes every time)."""
    import gzip

    lines = "".join(f"{s.lex_file}\t{' '.join(s.lemmas)}\t" + "\t".join(s.examples) + "\n" for s in synsets)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(lines.encode("utf-8"))
    return path


def read_wordnet(path: Path = WORDNET_EXTRACT) -> list[Synset]:
    """The synsets with usage examples, from the extract the repo carries (no system package needed)."""
    import gzip

    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; it ships with rlenv (reinstall the package), or rewrite it from WordNet "
            "with `python -m rlenv.assets.build extract-wordnet` after `apt-get install wordnet-base`"
        )
    synsets = []
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        lex_file, lemmas, *examples = line.split("\t")
        synsets.append(Synset(int(lex_file), tuple(lemmas.split(" ")), tuple(examples)))
    return synsets


def _clean_sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text.split()) >= 2 else ""


def wordnet_sentences(synsets: Sequence[Synset]) -> list[str]:
    """The usage examples, deduplicated in first-seen order."""
    return list(dict.fromkeys(e for s in synsets for e in s.examples))


# ---------------------------------------------------------------------------------------------------
# Review grammar
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Domain:
    """Things reviewed alike: how one meets them (intros) and what one judges (aspects)."""

    items: tuple[str, ...]
    aspects: tuple[str, ...]
    intros: tuple[str, ...]  # neutral first sentences; {item}, {when}, {duration}, {who}, {occasion}, {n}
    uses: tuple[str, ...]  # what the reviewer did with it, as a clause after "I" / "we"


def _split(words: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in words.split(",") if w.strip())


_PRODUCT_INTROS = _split(
    "I bought this {item} {when}, I ordered this {item} {when}, My {who} gave me this {item} for {occasion},"
    "We have had this {item} for {duration}, I got this {item} on sale {when},"
    "I picked up this {item} {when} to replace my old one, This {item} arrived {when},"
    "I have been using this {item} for {duration}, We bought this {item} for {occasion}"
)
DOMAINS: tuple[Domain, ...] = (
    Domain(_split("blender, toaster, coffee maker, kettle, microwave, rice cooker, air fryer, frying pan, "
                  "knife set, mixer, juicer, slow cooker, waffle iron, dish rack, food processor"),
           _split("motor, lid, handle, buttons, noise, price, design, cord, blades, cleanup, "
                  "instructions, warranty, power, timer, finish"),
           _PRODUCT_INTROS, _split("use it every morning, make soup with it, clean it by hand, use it twice a week")),
    Domain(_split("laptop, phone, tablet, camera, printer, router, smartwatch, monitor, keyboard, mouse, "
                  "speaker, charger, headset, e-reader, television"),
           _split("battery, screen, sound, software, case, display, build quality, setup, "
                  "charging cable, touchpad, app, speakers, menu, connection, remote"),
           _PRODUCT_INTROS, _split("use it for work, carry it everywhere, use it at night, set it up in ten minutes")),
    Domain(_split("vacuum cleaner, mattress, sofa, desk chair, lamp, fan, heater, rug, bookshelf, pillow, "
                  "blanket, dining table, bed frame, shower curtain, clock"),
           _split("fabric, color, assembly, cushions, size, smell, legs, frame, stitching, price, "
                  "delivery, packaging, filter, switch, material"),
           _PRODUCT_INTROS, _split("sleep on it every night, use it in the living room, put it together myself")),
    Domain(_split("drill, lawn mower, tent, backpack, bicycle, grill, flashlight, sleeping bag, garden hose, "
                  "ladder, toolbox, kayak, cooler, wheelbarrow, saw"),
           _split("engine, straps, zipper, handle, wheels, brakes, blade, battery, weight, seat, "
                  "frame, lid, grip, poles, chain"),
           _PRODUCT_INTROS, _split("took it camping, use it in the yard, use it on weekends, took it on a long trip")),
    Domain(_split("jacket, sweater, dress, raincoat, pair of boots, pair of jeans, hat, scarf, wallet, "
                  "watch, backpack, pair of sneakers, shirt, belt, pair of gloves"),
           _split("fit, fabric, color, stitching, zipper, pockets, sizing, buttons, sole, strap, "
                  "lining, collar, leather, material, price"),
           _PRODUCT_INTROS, _split("wear it every day, wore it to a wedding, wear it in the rain, wore it on a hike")),
    Domain(_split("board game, puzzle, toy car, doll, kite, building set, card game, stuffed bear, "
                  "scooter, toy train, chess set, water gun"),
           _split("pieces, rules, box, instructions, colors, wheels, batteries, price, size, "
                  "cards, paint, design"),
           _PRODUCT_INTROS, _split("play it with the kids, gave it to my nephew, play it on rainy days")),
    Domain(_split("shampoo, face cream, perfume, hair dryer, toothbrush, razor, sunscreen, lip balm, "
                  "body lotion, soap"),
           _split("smell, bottle, texture, price, packaging, scent, cap, cord, results, ingredients"),
           _PRODUCT_INTROS, _split("use it every day, use it after the gym, take it on trips")),
    Domain(_split("hotel, motel, resort, hostel, inn, guest house, lodge, cabin"),
           _split("room, bed, staff, breakfast, pool, view, bathroom, location, front desk, wifi, "
                  "parking, lobby, shower, hotel room, check in, air conditioning, towels, balcony"),
           _split("We stayed at this {item} for {n} nights, I stayed at this {item} {when},"
                  "We booked this {item} for {occasion}, My {who} and I stayed at this {item} {when},"
                  "We spent {duration} at this {item}"),
           _split("stayed there for {occasion}, checked in late, stayed on the top floor")),
    Domain(_split("restaurant, cafe, diner, pizza place, bakery, sushi bar, food truck, steakhouse, pub, "
                  "noodle shop, taco stand, coffee shop, bistro, ice cream shop"),
           _split("food, service, waiter, waitress, menu, pasta, soup, dessert, coffee, prices, portions, "
                  "atmosphere, music, wait, table, burger, pizza, salad, bread, chicken"),
           _split("We ate at this {item} {when}, I had lunch at this {item} {when},"
                  "We went to this {item} for {occasion}, My {who} took me to this {item} {when},"
                  "We had dinner at this {item} {when}, I stopped by this {item} {when}"),
           _split("ordered the special, sat by the window, went there for {occasion}, ordered takeout")),
    Domain(_split("museum, park, zoo, theater, gym, beach, campground, aquarium, library, mall, "
                  "water park, gallery, stadium, garden center"),
           _split("exhibits, staff, tickets, crowds, parking, restrooms, trails, equipment, showers, "
                  "lockers, gift shop, seats, animals, classes, hours"),
           _split("We visited this {item} {when}, I went to this {item} {when},"
                  "We took the kids to this {item} {when}, My {who} and I went to this {item} for {occasion},"
                  "I have been going to this {item} for {duration}"),
           _split("spent the whole day there, went on a Sunday, go there after work")),
    Domain(_split("movie, film, documentary, show, series, comedy, thriller, cartoon, musical, drama"),
           _split("plot, acting, ending, soundtrack, dialogue, pacing, special effects, cast, script, "
                  "villain, story, jokes, music, costumes, first episode"),
           _split("I watched this {item} {when}, We saw this {item} {when},"
                  "My {who} and I watched this {item} {when}, I finally watched this {item} {when},"
                  "We rented this {item} for {occasion}"),
           _split("watched it twice, watched it with my family, saw it in the theater")),
    Domain(_split("book, novel, cookbook, biography, album, podcast, video game, comic book, textbook, "
                  "audiobook, poetry collection"),
           _split("story, characters, writing, chapters, recipes, songs, lyrics, host, graphics, levels, "
                  "controls, cover, ending, narrator, photos"),
           _split("I read this {item} {when}, I listened to this {item} {when}, I played this {item} {when},"
                  "My {who} gave me this {item} for {occasion}, I finished this {item} {when}"),
           _split("read it in two days, listened to it in the car, played it all weekend")),
    Domain(_split("airline, flight, taxi, train ride, bus tour, delivery service, plumber, mechanic, dentist, "
                  "hair salon, bank, moving company, internet provider, cleaning service, car rental"),
           _split("staff, price, customer service, appointment, seats, driver, booking, delay, support team, "
                  "bill, website, schedule, office, technician, phone line"),
           _split("We used this {item} {when}, I booked this {item} {when}, I called this {item} {when},"
                  "We hired this {item} for {occasion}, I have used this {item} for {duration}"),
           _split("booked it online, called them twice, paid in cash")),
)

WHEN = _split("last week, last month, yesterday, two weeks ago, a few days ago, last year, in the spring, "
              "over the summer, last weekend, on Monday, on Friday night, in December, this morning")
DURATION = _split("two weeks, three months, a year, six months, a few days, two years, a month, ten days")
WHO = _split("wife, husband, sister, brother, mother, father, friend, son, daughter, boss, roommate, "
             "grandmother, neighbor, partner, cousin")
OCCASION = _split("my birthday, Christmas, our anniversary, a wedding, the holidays, a business trip, "
                  "graduation, a family reunion, spring break, a weekend trip")
NUMBERS = _split("two, three, four, five, six, seven, ten")

POSITIVE = _split("great, excellent, wonderful, amazing, fantastic, lovely, superb, perfect, pleasant, "
                  "reliable, comfortable, friendly, helpful, delicious, beautiful, impressive, solid, "
                  "sturdy, clean, brilliant, outstanding, fun, gorgeous, spotless, elegant, generous, "
                  "fresh, handy, cheerful, stunning, terrific, nice, good, charming, cozy, smooth, "
                  "enjoyable, satisfying, delightful, fabulous, awesome, useful, reasonable, spacious")
NEGATIVE = _split("terrible, awful, horrible, poor, disappointing, flimsy, broken, dirty, noisy, rude, "
                  "bland, boring, uncomfortable, useless, overpriced, unreliable, ugly, stale, greasy, "
                  "smelly, cramped, confusing, annoying, frustrating, weak, sloppy, dull, faulty, "
                  "mediocre, bad, nasty, messy, painful, pathetic, worthless, dreadful, filthy, "
                  "unpleasant, lousy, sad, careless, cheap")
NEUTRAL = _split("average, standard, ordinary, typical, simple, basic, small, large, plain, normal, "
                 "heavy, light, black, blue, gray, long, short, new, older, square, round, quick, "
                 "tall, narrow, wide, white, brown, green")
INTENSIFIERS = _split("very, really, quite, extremely, incredibly, pretty, so, surprisingly, fairly, "
                      "rather, truly, absolutely, a little, somewhat, always")

POSITIVE_VERBS = _split("love, like, enjoy, appreciate, adore, recommend")
NEGATIVE_VERBS = _split("hate, dislike, regret buying, cannot stand, regret choosing")
POSITIVE_RESULTS = _split(
    "works perfectly, works great, still works like new, does the job well, exceeded my expectations, "
    "made my life easier, was worth every penny, was a pleasant surprise, held up very well, "
    "made everyone happy, did exactly what I wanted")
NEGATIVE_RESULTS = _split(
    "stopped working, broke after {duration}, fell apart, was a waste of money, "
    "never worked properly, made a horrible noise, failed after {duration}, was a huge disappointment, "
    "ruined my {occasion_short}, gave me a headache, caused nothing but problems")
NEUTRAL_RESULTS = _split(
    "works as described, does what it says, is about what I expected, comes in {color}, "
    "arrived on {day}, came in a {size} box, is about the same as my old one, "
    "takes a few minutes to set up, needs to be charged every night, has a {size} label on the side")
COLORS = _split("black, white, gray, red, blue, green, silver, brown")
DAYS = _split("Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday")
SIZES = _split("small, large, plain, brown, cardboard")
OCCASION_SHORT = _split("weekend, vacation, evening, morning, trip, party")
OPENERS = _split("Honestly, Overall, To be fair, In the end, Sadly, Luckily, Frankly, To be honest, "
                 "All in all, At first, Unfortunately, Thankfully, Surprisingly")
POSITIVE_OPENERS = _split("Luckily, Thankfully")
NEGATIVE_OPENERS = _split("Sadly, Unfortunately")
NEUTRAL_OPENERS = _split("Honestly, Overall, To be fair, In the end, Frankly, To be honest, All in all, "
                         "At first, Surprisingly")
CLOSERS_POS = _split("I would buy it again, I would recommend it to anyone, Five stars from me, "
                     "We will definitely come back, I would happily go again, Highly recommended, "
                     "Best purchase I have made this year, I am very happy with it, My {who} loves it too")
CLOSERS_NEG = _split("I would not buy it again, I would not recommend it, Avoid it if you can, "
                     "We will not be back, I want my money back, Save your money, "
                     "Worst purchase I have made this year, I am returning it, My {who} hated it too")
CLOSERS_NEU = _split("We will see how it holds up, I might try another one next time, "
                     "It is fine for the price, Your mileage may vary, It does the job, "
                     "I have no strong feelings about it, It is what it is, I will update this review later, "
                     "I may try the other model next time")

_SLOT = re.compile(r"\{(\w+)\}")


def is_plural(noun: str) -> bool:
    return noun.endswith("s") and not noun.endswith("ss")


def was(noun: str) -> str:
    return "were" if is_plural(noun) else "was"


class ReviewGrammar:
    """Samples 1-3 sentence reviews; each sentence draws a polarity from the review's mood."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, options: Sequence[str]) -> str:
        return options[self.rng.randrange(len(options))]

    def fill(self, template: str, domain: Domain, item: str, aspect: str | None = None) -> str:
        aspect = aspect or self.pick(domain.aspects)
        slots = {
            "item": lambda: item, "aspect": lambda: aspect, "was": lambda: was(aspect),
            "when": lambda: self.pick(WHEN),
            "duration": lambda: self.pick(DURATION), "who": lambda: self.pick(WHO),
            "occasion": lambda: self.pick(OCCASION), "n": lambda: self.pick(NUMBERS),
            "color": lambda: self.pick(COLORS), "day": lambda: self.pick(DAYS), "size": lambda: self.pick(SIZES),
            "occasion_short": lambda: self.pick(OCCASION_SHORT),
        }
        return _SLOT.sub(lambda m: slots[m.group(1)](), template)

    def adjective(self, polarity: str) -> str:
        words = {"+": POSITIVE, "-": NEGATIVE, "0": NEUTRAL}[polarity]
        word = self.pick(words)
        if polarity != "0" and self.rng.random() < 0.35:
            word = f"{self.pick(INTENSIFIERS)} {word}"
        return word

    def sentence(self, polarity: str, domain: Domain, item: str) -> str:
        """One judgement of the given polarity ('+', '-' or '0') about the item or one of its aspects."""
        r = self.rng.random
        aspect = self.pick(domain.aspects)
        the_thing = self.pick((f"the {aspect}", f"the {item}", f"this {item}", "it"))
        verb = was(aspect) if the_thing == f"the {aspect}" else "was"
        if the_thing == "it":
            verb = "is" if r() < 0.5 else "was"
        kind = self.rng.randrange(9)
        adj = self.adjective(polarity)
        if kind == 0:
            text = f"{the_thing} {verb} {adj}"
        elif kind == 1:
            other = self.adjective(polarity)
            text = f"{the_thing} {verb} {adj} and {other}" if other != adj else f"{the_thing} {verb} {adj}"
        elif kind == 2:
            subject = self.pick(("I", "We", f"My {self.pick(WHO)}"))
            if polarity == "+":
                verb_phrase = self.pick(POSITIVE_VERBS)
            elif polarity == "-":
                verb_phrase = self.pick(NEGATIVE_VERBS)
            else:
                verb_phrase = self.pick(("noticed", "checked", "asked about", "wrote down", "looked at"))
            if subject.startswith("My") and " " not in verb_phrase:
                verb_phrase = verb_phrase + ("es" if verb_phrase.endswith("h") else "s")
            elif subject.startswith("My"):
                verb_phrase = {"regret buying": "regrets buying", "cannot stand": "cannot stand",
                               "regret choosing": "regrets choosing", "asked about": "asked about",
                               "wrote down": "wrote down", "looked at": "looked at"}.get(verb_phrase, verb_phrase)
            text = f"{subject} {verb_phrase} the {aspect}"
        elif kind == 3:
            results = {"+": POSITIVE_RESULTS, "-": NEGATIVE_RESULTS, "0": NEUTRAL_RESULTS}[polarity]
            subject = self.pick(("It", f"The {item}", f"This {item}"))
            text = f"{subject} {self.fill(self.pick(results), domain, item)}"
        elif kind == 4:
            opener = self.pick({"+": POSITIVE_OPENERS + NEUTRAL_OPENERS, "-": NEGATIVE_OPENERS + NEUTRAL_OPENERS,
                                "0": NEUTRAL_OPENERS}[polarity])
            text = f"{opener}, {the_thing} {verb} {adj}"
        elif kind == 5:
            noun = item if is_plural(aspect) else self.pick((item, aspect))
            adj = self.pick({"+": POSITIVE, "-": NEGATIVE, "0": NEUTRAL}[polarity])
            article = "an" if adj[0] in "aeio" or adj.startswith(("un", "ug")) else "a"
            if polarity == "0":
                text = f"It is {article} {adj} {noun}, nothing more"
            else:
                text = self.pick((f"What {article} {adj} {noun}", f"It is {article} {adj} {noun} for the price",
                                  f"This is {article} {adj} {noun}"))
        elif kind == 6:
            closers = {"+": CLOSERS_POS, "-": CLOSERS_NEG, "0": CLOSERS_NEU}[polarity]
            text = self.fill(self.pick(closers), domain, item)
        elif kind == 7:
            use = self.fill(self.pick(domain.uses), domain, item)
            subject = self.pick(("I", "We"))
            if polarity == "0":
                text = f"{subject} {use} and the {aspect} {was(aspect)} {adj}"
            else:
                feeling = {"+": "happy", "-": "unhappy"}[polarity]
                text = self.pick((f"{subject} {use} and the {aspect} {was(aspect)} {adj}",
                                  f"{subject} {use} and {subject.lower() if subject == 'We' else 'I'} "
                                  f"{'were' if subject == 'We' else 'was'} {self.pick(INTENSIFIERS)} {feeling}"))
        else:
            compare = {"+": "much better than", "-": "much worse than", "0": "about the same as"}[polarity]
            other = self.pick(("my old one", f"the last {item} I had", "I expected", "the photos",
                               f"the other {item} we tried", "the reviews said"))
            text = f"{the_thing} {verb} {compare} {other}"
        text = text[0].upper() + text[1:]
        mark = "!" if polarity != "0" and r() < 0.15 else "."
        return text + mark

    def review(self) -> str:
        domain = self.pick(DOMAINS)
        item = self.pick(domain.items)
        mood = self.pick(("+", "-", "0", "mixed"))
        n_sentences = self.pick((1, 2, 2, 3, 3))
        sentences = []
        if n_sentences > 1 and self.rng.random() < 0.5:
            sentences.append(self.fill(self.pick(domain.intros), domain, item) + ".")
        while len(sentences) < n_sentences:
            if mood == "mixed":
                polarity = self.pick("+-0")
            else:
                polarity = mood if self.rng.random() < 0.8 else self.pick("+-0")
            sentences.append(self.sentence(polarity, domain, item))
        if mood == "mixed" and len(sentences) >= 2 and self.rng.random() < 0.5:
            last = sentences.pop()
            sentences[-1] = sentences[-1][:-1] + ", but " + last[0].lower() + last[1:]
            sentences[-1] = sentences[-1].replace(", but i ", ", but I ")
        return " ".join(sentences)


def review_documents(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct reviews, a third each VADER-positive (> 0.05), -negative (< -0.05) and -neutral."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    vader = SentimentIntensityAnalyzer()
    grammar = ReviewGrammar(rng)
    buckets: dict[str, list[str]] = {"+": [], "-": [], "0": []}
    seen: set[str] = set()
    quota = n // 3
    while min(len(b) for b in buckets.values()) < quota:
        text = grammar.review()
        if text in seen:
            continue
        seen.add(text)
        score = vader.polarity_scores(text)["compound"]
        label = "+" if score > 0.05 else "-" if score < -0.05 else "0"
        if len(buckets[label]) < quota:
            buckets[label].append(text)
    return buckets["+"] + buckets["-"] + buckets["0"]


def review_prompts(n: int, rng: random.Random) -> list[str]:
    """Review openings for the PositiveReview task: sentence starts that stop before any judgement."""
    grammar = ReviewGrammar(rng)
    patterns = (
        "The {aspect} {was}", "The {aspect} at this {item} {was}", "The {item} was", "This {item} is",
        "This {item} was", "Honestly, the {aspect}", "Overall, this {item}", "After {duration}, the {item}",
        "The {aspect} of this {item}", "I think the {aspect}", "My {who} said the {aspect} {was}",
        "To be honest, this {item}", "The first thing I noticed about the {aspect} was that it",
        "{intro} and the {aspect}", "{intro}. The {aspect} {was}", "{intro}. It", "{intro}, and",
        "I have to say that the {aspect}", "We thought the {aspect} {was}", "In my opinion, this {item}",
        "What I remember most about this {item} is",
    )
    prompts: dict[str, None] = {}
    while len(prompts) < n:
        domain = grammar.pick(DOMAINS)
        item = grammar.pick(domain.items)
        pattern = grammar.pick(patterns).replace("{intro}", grammar.pick(domain.intros))
        text = grammar.fill(pattern, domain, item)
        prompts[text[0].upper() + text[1:]] = None
    return list(prompts)


# ---------------------------------------------------------------------------------------------------
# Arithmetic and keyword documents
# ---------------------------------------------------------------------------------------------------

def arithmetic_documents(n: int, rng: random.Random, p_correct: float = 0.6, p_small: float = 0.5) -> list[str]:
    """``a+b=c``, ``a-b=c`` (c >= 0) and ``a*b=c`` (b one digit), one-digit operands with probability
    ``p_small``; ``c`` is right with probability ``p_correct`` and off by a little otherwise."""
    docs = []
    for _ in range(n):
        small = rng.random() < p_small
        a, b = (rng.randint(0, 9), rng.randint(0, 9)) if small else (rng.randint(0, 99), rng.randint(0, 99))
        op = rng.choices("+-*", weights=(5, 3, 2))[0]
        if op == "-" and b > a:
            a, b = b, a
        if op == "*":
            b %= 10
        answer = {"+": a + b, "-": a - b, "*": a * b}[op]
        if rng.random() >= p_correct:
            offset = rng.choices((1, 2, 3, 10), weights=(5, 2, 1, 2))[0]
            answer = answer + offset if answer < offset or rng.random() < 0.5 else answer - offset
        docs.append(f"{a}{op}{b}={answer}")
    return docs


_WORD = re.compile(r"^[a-z]{4,12}$")


def keyword_pool(synsets: Sequence[Synset]) -> dict[str, list[tuple[int, str]]]:
    """Single-word lemmas -> [(lexicographer file, example using the word)], for common-looking words."""
    pool: dict[str, list[tuple[int, str]]] = {}
    for s in synsets:
        for lemma in s.lemmas:
            if not _WORD.match(lemma):
                continue
            uses = [e for e in s.examples if re.search(rf"\b{lemma}\b", e, re.IGNORECASE)]
            for example in uses:
                pool.setdefault(lemma, []).append((s.lex_file, example))
    return pool


def keyword_documents(n: int, synsets: Sequence[Synset], rng: random.Random,
                      p_uses_word: float = 0.5) -> list[str]:
    """``Write a sentence with the word w: <sentence>``; the sentence contains ``w`` about half the
    time and is otherwise an example from the same WordNet topic (or a review sentence) without it."""
    pool = keyword_pool(synsets)
    words = sorted(pool)
    by_topic: dict[int, list[str]] = {}
    for s in synsets:
        by_topic.setdefault(s.lex_file, []).extend(s.examples)
    grammar = ReviewGrammar(rng)
    docs = []
    for _ in range(n):
        if rng.random() < 0.25:  # review-vocabulary keywords with review answers
            domain = grammar.pick(DOMAINS)
            item = grammar.pick(domain.items)
            word = item.split()[-1]
            answer = grammar.sentence(grammar.pick("+-0"), domain, item)
            while (re.search(rf"\b{word}\b", answer) is not None) != (rng.random() < p_uses_word):
                answer = grammar.sentence(grammar.pick("+-0"), domain, item)
        else:
            word = words[rng.randrange(len(words))]
            topic, example = pool[word][rng.randrange(len(pool[word]))]
            answer = example
            if rng.random() >= p_uses_word:
                candidates = by_topic[topic]
                answer = candidates[rng.randrange(len(candidates))]
                while re.search(rf"\b{word}\b", answer, re.IGNORECASE):
                    answer = candidates[rng.randrange(len(candidates))]
        docs.append(f"{KEYWORD_INSTRUCTION.format(word=word)} {answer}")
    return docs


def keyword_task_prompts(n: int, synsets: Sequence[Synset], rng: random.Random) -> list[dict[str, str]]:
    """Keyword-task records: everyday words (ones with several usage examples, or review items)."""
    pool = keyword_pool(synsets)
    common = [w for w in sorted(pool) if len(pool[w]) >= 3]
    review_words = sorted({item.split()[-1] for d in DOMAINS for item in d.items if item.split()[-1].isalpha()})
    chosen: dict[str, None] = {}
    while len(chosen) < n:
        source = review_words if rng.random() < 0.3 else common
        chosen[source[rng.randrange(len(source))]] = None
    return [{"prompt": KEYWORD_INSTRUCTION.format(word=w), "keyword": w} for w in chosen]


# ---------------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CorpusConfig:
    seed: int = SEED
    n_reviews: int = 13_500
    n_arithmetic: int = 60_000
    n_keyword: int = 24_000
    n_review_prompts: int = 300
    n_keyword_prompts: int = 300


@dataclass(frozen=True)
class Corpus:
    documents: list[str]
    review_prompts: list[str]
    keyword_prompts: list[dict[str, str]]


def build_corpus(config: CorpusConfig = CorpusConfig(), wordnet_extract: Path = WORDNET_EXTRACT) -> Corpus:
    """All documents, shuffled by a seeded RNG; the task prompts never equal a training document."""
    synsets = read_wordnet(wordnet_extract)
    # one RNG per part, so changing one part's size leaves the others' documents alone
    reviews = review_documents(config.n_reviews, random.Random(f"{config.seed}-reviews"))
    arithmetic = arithmetic_documents(config.n_arithmetic, random.Random(f"{config.seed}-arithmetic"))
    keywords = keyword_documents(config.n_keyword, synsets, random.Random(f"{config.seed}-keywords"))
    documents = wordnet_sentences(synsets) + reviews + arithmetic + keywords
    random.Random(f"{config.seed}-shuffle").shuffle(documents)
    known = set(documents)
    prompts = [p for p in review_prompts(config.n_review_prompts + 50, random.Random(f"{config.seed}-prompts"))
               if p not in known][: config.n_review_prompts]
    keyword_records = keyword_task_prompts(config.n_keyword_prompts, synsets,
                                           random.Random(f"{config.seed}-keyword-prompts"))
    return Corpus(documents, prompts, keyword_records)


def corpus_text(documents: Sequence[str]) -> str:
    return "".join(d + "\n" for d in documents)


def write_corpus(out: Path, config: CorpusConfig = CorpusConfig(), data_dir: Path | None = None) -> Path:
    """Write ``out/corpus.txt``; with ``data_dir``, also the task prompt files there."""
    corpus = build_corpus(config)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "corpus.txt"
    path.write_text(corpus_text(corpus.documents), encoding="utf-8")
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "review_prompts.txt").write_text("".join(p + "\n" for p in corpus.review_prompts),
                                                     encoding="utf-8")
        (data_dir / "keyword_prompts.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in corpus.keyword_prompts), encoding="utf-8")
    log.info("corpus: %d documents, %d bytes -> %s", len(corpus.documents), path.stat().st_size, path)
    return path


def read_documents(corpus_path: Path) -> list[str]:
    return corpus_path.read_text(encoding="utf-8").splitlines()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------

VOCAB_SIZE = 4096
MAX_LENGTH = 256


def train_tokenizer(documents: Sequence[str], out: Path, vocab_size: int = VOCAB_SIZE) -> Path:
    """Byte-level BPE with every digit its own token (so numbers are compositional); saved as a
    ``PreTrainedTokenizerFast`` whose EOS = BOS = ``<|endoftext|>`` and pad = ``<|pad|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(documents, trainer=trainer, length=len(documents))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                                   pad_token=PAD, model_max_length=MAX_LENGTH)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    log.info("tokenizer: %d tokens -> %s", len(fast), out)
    return out / "tokenizer.json"


# ---------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    seed: int = SEED
    n_layer: int = 4
    n_embd: int = 224
    n_head: int = 4
    n_positions: int = MAX_LENGTH
    dropout: float = 0.1
    block_size: int = MAX_LENGTH  # tokens per packed training row
    batch_size: int = 16  # rows per step
    steps: int = 4000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 150
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    holdout_fraction: float = 0.02
    threads: int = 2
    autocast: str | None = "bf16"  # matmuls under CPU bf16 autocast, weights and optimizer in fp32; None: fp32

    def __post_init__(self) -> None:
        if self.autocast not in (None, "bf16"):
            raise ValueError(f"autocast must be 'bf16' or None (fp32 throughout), got {self.autocast!r}")


def pack_rows(docs: Sequence[list[int]], block_size: int) -> list[list[int]]:
    """Greedily pack whole documents (never split) into rows of at most ``block_size`` tokens, so every
    row starts at a document start, as prompts do at inference."""
    rows: list[list[int]] = []
    row: list[int] = []
    for doc in docs:
        doc = doc[:block_size]
        if len(row) + len(doc) > block_size:
            rows.append(row)
            row = []
        row = row + doc
    if row:
        rows.append(row)
    return rows


def _batches(rows: list[list[int]], batch_size: int, pad_id: int):
    import torch

    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)  # (B, T)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, r in enumerate(chunk):
            ids[i, :len(r)] = torch.tensor(r)
            labels[i, :len(r)] = ids[i, :len(r)]
            mask[i, :len(r)] = 1
        yield ids, mask, labels


def train_model(corpus_path: Path, tokenizer_dir: Path, out: Path, config: TrainConfig = TrainConfig(),
                on_log=None) -> dict:
    """Train a GPT-2-style LM from scratch on the corpus (each document + EOS); save it with the
    tokenizer into ``out`` and return the build record written to ``out/build_info.json``."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    started = time.time()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    documents = read_documents(corpus_path)
    encoded = [ids + [tokenizer.eos_token_id] for ids in tokenizer(documents)["input_ids"]]

    rng = random.Random(f"{config.seed}-holdout")
    order = list(range(len(encoded)))
    rng.shuffle(order)
    n_holdout = int(len(encoded) * config.holdout_fraction)
    holdout = [encoded[i] for i in sorted(order[:n_holdout])]
    train = [encoded[i] for i in sorted(order[n_holdout:])]

    model_config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=config.n_positions, n_embd=config.n_embd,
        n_layer=config.n_layer, n_head=config.n_head, resid_pdrop=config.dropout,
        embd_pdrop=config.dropout, attn_pdrop=config.dropout, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    model = GPT2LMHeadModel(model_config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))

    def epochs() -> Iterator[tuple]:
        epoch = 0
        while True:
            shuffled = list(train)
            random.Random(f"{config.seed}-epoch-{epoch}").shuffle(shuffled)
            rows = pack_rows(shuffled, config.block_size)
            yield from _batches(rows, config.batch_size, tokenizer.pad_token_id)
            epoch += 1

    model.train()
    n_train_tokens = sum(len(d) for d in train)
    batches = epochs()
    tokens_seen = 0
    for step in range(config.steps):
        ids, mask, labels = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.autocast == "bf16"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        tokens_seen += int(mask.sum())
        if on_log is not None and (step % 50 == 0 or step == config.steps - 1):
            on_log(f"step {step}/{config.steps} loss {loss.item():.3f} lr {lr_at(step):.2e} "
                   f"epoch {tokens_seen / n_train_tokens:.2f} {time.time() - started:.0f}s")

    model.eval()
    holdout_nll, holdout_tokens = 0.0, 0
    with torch.no_grad():
        for ids, mask, labels in _batches(pack_rows(holdout, config.block_size), config.batch_size,
                                          tokenizer.pad_token_id):
            n = int((labels[:, 1:] != -100).sum())
            holdout_nll += model(input_ids=ids, attention_mask=mask, labels=labels).loss.item() * n
            holdout_tokens += n
    perplexity = math.exp(holdout_nll / holdout_tokens)

    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    for source in sorted(tokenizer_dir.iterdir()):  # byte-identical to the reproducible tokenizer build
        shutil.copyfile(source, out / source.name)
    info = {
        "seed": config.seed,
        "corpus_sha256": sha256_file(corpus_path),
        "tokenizer_json_sha256": sha256_file(out / "tokenizer.json"),
        "corpus_config": asdict(CorpusConfig()),
        "train_config": asdict(config),
        "documents": len(documents),
        "train_documents": len(train),
        "holdout_documents": len(holdout),
        "corpus_tokens": sum(len(d) for d in encoded),
        "tokens_seen": tokens_seen,
        "training_steps": config.steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": round(time.time() - started, 1),
        "holdout_perplexity": round(perplexity, 3),
        "torch_version": torch.__version__,
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


# ---------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rlenv.assets.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("corpus", "tokenizer", "model", "all", "extract-wordnet"))
    parser.add_argument("--out", type=Path, default=Path("build/default_model"),
                        help="build directory (corpus.txt, tokenizer/, model/)")
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="where the trained model goes (default: OUT/model); pass "
                             "rlenv/assets/default_model to replace the shipped one")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where the task prompt files go")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--wordnet-dir", type=Path, default=WORDNET_DIR,
                        help="WordNet 3.0's data files (extract-wordnet only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    if args.stage == "extract-wordnet":
        path = write_wordnet_extract(read_wordnet_data_files(args.wordnet_dir))
        print(f"{path} sha256 {sha256_file(path)}")
        return

    corpus_path = args.out / "corpus.txt"
    tokenizer_dir = args.out / "tokenizer"
    if args.stage in ("corpus", "all"):
        write_corpus(args.out, data_dir=args.data_dir)
    if args.stage in ("tokenizer", "all"):
        train_tokenizer(read_documents(corpus_path), tokenizer_dir)
        print(f"tokenizer.json sha256 {sha256_file(tokenizer_dir / 'tokenizer.json')}")
    if args.stage in ("model", "all"):
        info = train_model(corpus_path, tokenizer_dir, args.model_dir or args.out / "model",
                           TrainConfig(steps=args.steps), on_log=lambda line: print(line, flush=True))
        print(json.dumps(info, indent=2))
    if args.stage == "corpus":
        print(f"corpus.txt sha256 {sha256_file(corpus_path)}")


if __name__ == "__main__":
    main()
