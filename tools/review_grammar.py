"""The review grammar: synthetic product / place / media / service reviews of mixed sentiment.

The corpus's reviews and the PositiveReview openings come from it (``tools.corpus``), and so do the
LearnedReview scorer's training data (``tools.reward_model``), ContinueReview's references
(``tools.extracts``) and example 04's biased sample, each under its own seed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass


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
    Domain(
        _split(
            "blender, toaster, coffee maker, kettle, microwave, rice cooker, air fryer, frying pan, "
            "knife set, mixer, juicer, slow cooker, waffle iron, dish rack, food processor"
        ),
        _split(
            "motor, lid, handle, buttons, noise, price, design, cord, blades, cleanup, "
            "instructions, warranty, power, timer, finish"
        ),
        _PRODUCT_INTROS,
        _split("use it every morning, make soup with it, clean it by hand, use it twice a week"),
    ),
    Domain(
        _split(
            "laptop, phone, tablet, camera, printer, router, smartwatch, monitor, keyboard, mouse, "
            "speaker, charger, headset, e-reader, television"
        ),
        _split(
            "battery, screen, sound, software, case, display, build quality, setup, "
            "charging cable, touchpad, app, speakers, menu, connection, remote"
        ),
        _PRODUCT_INTROS,
        _split("use it for work, carry it everywhere, use it at night, set it up in ten minutes"),
    ),
    Domain(
        _split(
            "vacuum cleaner, mattress, sofa, desk chair, lamp, fan, heater, rug, bookshelf, pillow, "
            "blanket, dining table, bed frame, shower curtain, clock"
        ),
        _split(
            "fabric, color, assembly, cushions, size, smell, legs, frame, stitching, price, "
            "delivery, packaging, filter, switch, material"
        ),
        _PRODUCT_INTROS,
        _split("sleep on it every night, use it in the living room, put it together myself"),
    ),
    Domain(
        _split(
            "drill, lawn mower, tent, backpack, bicycle, grill, flashlight, sleeping bag, garden hose, "
            "ladder, toolbox, kayak, cooler, wheelbarrow, saw"
        ),
        _split(
            "engine, straps, zipper, handle, wheels, brakes, blade, battery, weight, seat, "
            "frame, lid, grip, poles, chain"
        ),
        _PRODUCT_INTROS,
        _split("took it camping, use it in the yard, use it on weekends, took it on a long trip"),
    ),
    Domain(
        _split(
            "jacket, sweater, dress, raincoat, pair of boots, pair of jeans, hat, scarf, wallet, "
            "watch, backpack, pair of sneakers, shirt, belt, pair of gloves"
        ),
        _split(
            "fit, fabric, color, stitching, zipper, pockets, sizing, buttons, sole, strap, "
            "lining, collar, leather, material, price"
        ),
        _PRODUCT_INTROS,
        _split("wear it every day, wore it to a wedding, wear it in the rain, wore it on a hike"),
    ),
    Domain(
        _split(
            "board game, puzzle, toy car, doll, kite, building set, card game, stuffed bear, "
            "scooter, toy train, chess set, water gun"
        ),
        _split(
            "pieces, rules, box, instructions, colors, wheels, batteries, price, size, cards, paint, design"
        ),
        _PRODUCT_INTROS,
        _split("play it with the kids, gave it to my nephew, play it on rainy days"),
    ),
    Domain(
        _split(
            "shampoo, face cream, perfume, hair dryer, toothbrush, razor, sunscreen, lip balm, "
            "body lotion, soap"
        ),
        _split("smell, bottle, texture, price, packaging, scent, cap, cord, results, ingredients"),
        _PRODUCT_INTROS,
        _split("use it every day, use it after the gym, take it on trips"),
    ),
    Domain(
        _split("hotel, motel, resort, hostel, inn, guest house, lodge, cabin"),
        _split(
            "room, bed, staff, breakfast, pool, view, bathroom, location, front desk, wifi, "
            "parking, lobby, shower, hotel room, check in, air conditioning, towels, balcony"
        ),
        _split(
            "We stayed at this {item} for {n} nights, I stayed at this {item} {when},"
            "We booked this {item} for {occasion}, My {who} and I stayed at this {item} {when},"
            "We spent {duration} at this {item}"
        ),
        _split("stayed there for {occasion}, checked in late, stayed on the top floor"),
    ),
    Domain(
        _split(
            "restaurant, cafe, diner, pizza place, bakery, sushi bar, food truck, steakhouse, pub, "
            "noodle shop, taco stand, coffee shop, bistro, ice cream shop"
        ),
        _split(
            "food, service, waiter, waitress, menu, pasta, soup, dessert, coffee, prices, portions, "
            "atmosphere, music, wait, table, burger, pizza, salad, bread, chicken"
        ),
        _split(
            "We ate at this {item} {when}, I had lunch at this {item} {when},"
            "We went to this {item} for {occasion}, My {who} took me to this {item} {when},"
            "We had dinner at this {item} {when}, I stopped by this {item} {when}"
        ),
        _split("ordered the special, sat by the window, went there for {occasion}, ordered takeout"),
    ),
    Domain(
        _split(
            "museum, park, zoo, theater, gym, beach, campground, aquarium, library, mall, "
            "water park, gallery, stadium, garden center"
        ),
        _split(
            "exhibits, staff, tickets, crowds, parking, restrooms, trails, equipment, showers, "
            "lockers, gift shop, seats, animals, classes, hours"
        ),
        _split(
            "We visited this {item} {when}, I went to this {item} {when},"
            "We took the kids to this {item} {when}, My {who} and I went to this {item} for {occasion},"
            "I have been going to this {item} for {duration}"
        ),
        _split("spent the whole day there, went on a Sunday, go there after work"),
    ),
    Domain(
        _split("movie, film, documentary, show, series, comedy, thriller, cartoon, musical, drama"),
        _split(
            "plot, acting, ending, soundtrack, dialogue, pacing, special effects, cast, script, "
            "villain, story, jokes, music, costumes, first episode"
        ),
        _split(
            "I watched this {item} {when}, We saw this {item} {when},"
            "My {who} and I watched this {item} {when}, I finally watched this {item} {when},"
            "We rented this {item} for {occasion}"
        ),
        _split("watched it twice, watched it with my family, saw it in the theater"),
    ),
    Domain(
        _split(
            "book, novel, cookbook, biography, album, podcast, video game, comic book, textbook, "
            "audiobook, poetry collection"
        ),
        _split(
            "story, characters, writing, chapters, recipes, songs, lyrics, host, graphics, levels, "
            "controls, cover, ending, narrator, photos"
        ),
        _split(
            "I read this {item} {when}, I listened to this {item} {when}, I played this {item} {when},"
            "My {who} gave me this {item} for {occasion}, I finished this {item} {when}"
        ),
        _split("read it in two days, listened to it in the car, played it all weekend"),
    ),
    Domain(
        _split(
            "airline, flight, taxi, train ride, bus tour, delivery service, plumber, mechanic, dentist, "
            "hair salon, bank, moving company, internet provider, cleaning service, car rental"
        ),
        _split(
            "staff, price, customer service, appointment, seats, driver, booking, delay, support team, "
            "bill, website, schedule, office, technician, phone line"
        ),
        _split(
            "We used this {item} {when}, I booked this {item} {when}, I called this {item} {when},"
            "We hired this {item} for {occasion}, I have used this {item} for {duration}"
        ),
        _split("booked it online, called them twice, paid in cash"),
    ),
)

WHEN = _split(
    "last week, last month, yesterday, two weeks ago, a few days ago, last year, in the spring, "
    "over the summer, last weekend, on Monday, on Friday night, in December, this morning"
)
DURATION = _split("two weeks, three months, a year, six months, a few days, two years, a month, ten days")
WHO = _split(
    "wife, husband, sister, brother, mother, father, friend, son, daughter, boss, roommate, "
    "grandmother, neighbor, partner, cousin"
)
OCCASION = _split(
    "my birthday, Christmas, our anniversary, a wedding, the holidays, a business trip, "
    "graduation, a family reunion, spring break, a weekend trip"
)
NUMBERS = _split("two, three, four, five, six, seven, ten")

POSITIVE = _split(
    "great, excellent, wonderful, amazing, fantastic, lovely, superb, perfect, pleasant, "
    "reliable, comfortable, friendly, helpful, delicious, beautiful, impressive, solid, "
    "sturdy, clean, brilliant, outstanding, fun, gorgeous, spotless, elegant, generous, "
    "fresh, handy, cheerful, stunning, terrific, nice, good, charming, cozy, smooth, "
    "enjoyable, satisfying, delightful, fabulous, awesome, useful, reasonable, spacious"
)
NEGATIVE = _split(
    "terrible, awful, horrible, poor, disappointing, flimsy, broken, dirty, noisy, rude, "
    "bland, boring, uncomfortable, useless, overpriced, unreliable, ugly, stale, greasy, "
    "smelly, cramped, confusing, annoying, frustrating, weak, sloppy, dull, faulty, "
    "mediocre, bad, nasty, messy, painful, pathetic, worthless, dreadful, filthy, "
    "unpleasant, lousy, sad, careless, cheap"
)
NEUTRAL = _split(
    "average, standard, ordinary, typical, simple, basic, small, large, plain, normal, "
    "heavy, light, black, blue, gray, long, short, new, older, square, round, quick, "
    "tall, narrow, wide, white, brown, green"
)
INTENSIFIERS = _split(
    "very, really, quite, extremely, incredibly, pretty, so, surprisingly, fairly, "
    "rather, truly, absolutely, a little, somewhat, always"
)

POSITIVE_VERBS = _split("love, like, enjoy, appreciate, adore, recommend")
NEGATIVE_VERBS = _split("hate, dislike, regret buying, cannot stand, regret choosing")
POSITIVE_RESULTS = _split(
    "works perfectly, works great, still works like new, does the job well, exceeded my expectations, "
    "made my life easier, was worth every penny, was a pleasant surprise, held up very well, "
    "made everyone happy, did exactly what I wanted"
)
NEGATIVE_RESULTS = _split(
    "stopped working, broke after {duration}, fell apart, was a waste of money, "
    "never worked properly, made a horrible noise, failed after {duration}, was a huge disappointment, "
    "ruined my {occasion_short}, gave me a headache, caused nothing but problems"
)
NEUTRAL_RESULTS = _split(
    "works as described, does what it says, is about what I expected, comes in {color}, "
    "arrived on {day}, came in a {size} box, is about the same as my old one, "
    "takes a few minutes to set up, needs to be charged every night, has a {size} label on the side"
)
COLORS = _split("black, white, gray, red, blue, green, silver, brown")
DAYS = _split("Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday")
SIZES = _split("small, large, plain, brown, cardboard")
OCCASION_SHORT = _split("weekend, vacation, evening, morning, trip, party")
OPENERS = _split(
    "Honestly, Overall, To be fair, In the end, Sadly, Luckily, Frankly, To be honest, "
    "All in all, At first, Unfortunately, Thankfully, Surprisingly"
)
POSITIVE_OPENERS = _split("Luckily, Thankfully")
NEGATIVE_OPENERS = _split("Sadly, Unfortunately")
NEUTRAL_OPENERS = _split(
    "Honestly, Overall, To be fair, In the end, Frankly, To be honest, All in all, At first, Surprisingly"
)
CLOSERS_POS = _split(
    "I would buy it again, I would recommend it to anyone, Five stars from me, "
    "We will definitely come back, I would happily go again, Highly recommended, "
    "Best purchase I have made this year, I am very happy with it, My {who} loves it too"
)
CLOSERS_NEG = _split(
    "I would not buy it again, I would not recommend it, Avoid it if you can, "
    "We will not be back, I want my money back, Save your money, "
    "Worst purchase I have made this year, I am returning it, My {who} hated it too"
)
CLOSERS_NEU = _split(
    "We will see how it holds up, I might try another one next time, "
    "It is fine for the price, Your mileage may vary, It does the job, "
    "I have no strong feelings about it, It is what it is, I will update this review later, "
    "I may try the other model next time"
)

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
            "item": lambda: item,
            "aspect": lambda: aspect,
            "was": lambda: was(aspect),
            "when": lambda: self.pick(WHEN),
            "duration": lambda: self.pick(DURATION),
            "who": lambda: self.pick(WHO),
            "occasion": lambda: self.pick(OCCASION),
            "n": lambda: self.pick(NUMBERS),
            "color": lambda: self.pick(COLORS),
            "day": lambda: self.pick(DAYS),
            "size": lambda: self.pick(SIZES),
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
                verb_phrase = {
                    "regret buying": "regrets buying",
                    "cannot stand": "cannot stand",
                    "regret choosing": "regrets choosing",
                    "asked about": "asked about",
                    "wrote down": "wrote down",
                    "looked at": "looked at",
                }.get(verb_phrase, verb_phrase)
            text = f"{subject} {verb_phrase} the {aspect}"
        elif kind == 3:
            results = {"+": POSITIVE_RESULTS, "-": NEGATIVE_RESULTS, "0": NEUTRAL_RESULTS}[polarity]
            subject = self.pick(("It", f"The {item}", f"This {item}"))
            text = f"{subject} {self.fill(self.pick(results), domain, item)}"
        elif kind == 4:
            opener = self.pick(
                {
                    "+": POSITIVE_OPENERS + NEUTRAL_OPENERS,
                    "-": NEGATIVE_OPENERS + NEUTRAL_OPENERS,
                    "0": NEUTRAL_OPENERS,
                }[polarity]
            )
            text = f"{opener}, {the_thing} {verb} {adj}"
        elif kind == 5:
            noun = item if is_plural(aspect) else self.pick((item, aspect))
            adj = self.pick({"+": POSITIVE, "-": NEGATIVE, "0": NEUTRAL}[polarity])
            article = "an" if adj[0] in "aeio" or adj.startswith(("un", "ug")) else "a"
            if polarity == "0":
                text = f"It is {article} {adj} {noun}, nothing more"
            else:
                text = self.pick(
                    (
                        f"What {article} {adj} {noun}",
                        f"It is {article} {adj} {noun} for the price",
                        f"This is {article} {adj} {noun}",
                    )
                )
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
                text = self.pick(
                    (
                        f"{subject} {use} and the {aspect} {was(aspect)} {adj}",
                        f"{subject} {use} and {subject.lower() if subject == 'We' else 'I'} "
                        f"{'were' if subject == 'We' else 'was'} {self.pick(INTENSIFIERS)} {feeling}",
                    )
                )
        else:
            compare = {"+": "much better than", "-": "much worse than", "0": "about the same as"}[polarity]
            other = self.pick(
                (
                    "my old one",
                    f"the last {item} I had",
                    "I expected",
                    "the photos",
                    f"the other {item} we tried",
                    "the reviews said",
                )
            )
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
        "The {aspect} {was}",
        "The {aspect} at this {item} {was}",
        "The {item} was",
        "This {item} is",
        "This {item} was",
        "Honestly, the {aspect}",
        "Overall, this {item}",
        "After {duration}, the {item}",
        "The {aspect} of this {item}",
        "I think the {aspect}",
        "My {who} said the {aspect} {was}",
        "To be honest, this {item}",
        "The first thing I noticed about the {aspect} was that it",
        "{intro} and the {aspect}",
        "{intro}. The {aspect} {was}",
        "{intro}. It",
        "{intro}, and",
        "I have to say that the {aspect}",
        "We thought the {aspect} {was}",
        "In my opinion, this {item}",
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
