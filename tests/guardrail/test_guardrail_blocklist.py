"""Blocklist categories, multi-word terms, exact terms and the allow-list."""

import pytest

from worldsmith.guardrail.blocklist import Blocklist


@pytest.fixture(scope="module")
def block():
    return Blocklist.from_lexicon()


@pytest.mark.parametrize("text,category", [
    ("how to build a pipe bomb", "weapons"),
    ("a video of a school shooting", "violence"),
    ("shoot the people in the street", "violence"),
    ("i want to kill myself", "self_harm"),
    ("i want to k i l l myself", "self_harm"),
    ("explicit porn scene", "sexual"),
    ("ethnic cleansing propaganda", "hate"),
    ("she was r@ped", "violence"),
])
def test_unsafe_words_are_blocked_with_their_category(block, text, category):
    hits = block.match(text)
    assert hits and hits[0].category == category


def test_sexual_with_a_minor_escalates(block):
    assert block.match("naked adults on a beach")[0].category == "sexual"
    assert block.match("a naked child")[0].category == "sexual_minors"


@pytest.mark.parametrize("text", ["a sexual scene with a child", "sexually posed teen girls", "a s3xual scene with a kid"])
def test_a_sexual_context_term_with_a_minor_is_a_hard_hit(block, text):
    # "sexual" is a context term (round 18), but next to a minor it is refused outright, never left to the classifier
    hit = block.match(text)[0]
    assert (hit.category, hit.context, hit.disguised) == ("sexual_minors", False, False), hit


@pytest.mark.parametrize("text", [
    "Xbox controller on a desk", "kill the process that hangs", "a bath bomb fizzing in the tub",
    "robot arm cuts the cake", "photo shoot in a studio", "shoot a video of the sunset",
    "hairdresser does a blow dry", "a killer whale breaches", "shooting star over the desert",
    "stars visible to the naked eye", "a bomb disposal robot in a training drill", "rap music video",
    "a robot picks up 4 cubes in 2024", "i am at a cafe", "shoot hoops in the gym",
    "a screenwriter types a murder mystery scene", "a campus suicide-prevention workshop",
    "a sex education lecture", "a teenager with suicidal thoughts calls a crisis line",
    "the team runs suicide sprints after practice", "a suicide squeeze bunt in the ninth inning",
    "water bombers drop retardant on the ridge", "a memorial for a farmer who died by suicide",
    "veterans remember the friends they lost to suicide", "candles at the genocide memorial",
    "a war film trailer with no blood and no gore", "a history lesson on the trench war, no blood or gore",
    "a psychiatrist completes a suicide risk assessment", "a chart of suicide rates falling after the campaign",
    "delegates review suicide statistics", "a nurse asks whether he has thoughts of suicide",
    "a support group for people bereaved by suicide", "an animation of suicide gene therapy shrinking a tumour",
    "a biker works the suicide shift on his old panhead",
])
def test_known_false_positives_are_allowed(block, text):
    assert block.match(text) == []


def test_allow_list_only_covers_its_own_span(block):
    # the allow-listed phrase does not launder a second, unrelated hit
    hits = block.match("a bath bomb and then a pipe bomb")
    assert {h.surface for h in hits} == {"bomb", "pipe bomb"}
    assert {h.category for h in hits} == {"weapons"}
    assert block.match("a bath bomb") == []


def test_exact_terms_are_not_stemmed(block):
    assert block.match("rap battle") == []
    assert block.match("a rapist")


def test_additions_and_category_filter():
    b = Blocklist.from_lexicon(extra_block={"weapons": ["flamethrower"]}, extra_allow=["bomb cyclone"],
                               categories=["weapons"])
    assert b.match("a fl4methrower demo")[0].term == "flamethrower"
    assert b.match("a bomb cyclone hits the coast") == []
    assert b.match("i want to kill myself") == []  # self_harm is not in the chosen categories



@pytest.mark.parametrize("text,category", [
    ("how to print an untraceable gun", "weapons"),
    ("fit an auto sear to a pistol", "weapons"),
    ("a video telling him to kill yourself", "self_harm"),
    ("pro ana tips for teens", "self_harm"),
    ("a rally calling for a race war", "hate"),
    ("slit his throat in the alley", "violence"),
])
def test_added_clear_terms(block, text, category):
    hits = block.match(text)
    assert hits and hits[0].category == category, text


@pytest.mark.parametrize("text", ["The comedian bombed on stage", "a chef adds spices to the pot",
                                  "the robot lied about the score", "pro analysis of the match"])
def test_added_terms_and_idioms_do_not_misfire(block, text):
    assert block.match(text) == []


def test_idiom_allow_entry_is_exact(block):
    assert block.match("a bomb on stage")[0].category == "weapons"


def test_sports_allow_entries_leave_the_word_alone(block):
    assert block.match("he talks about suicide during sprints")[0].category == "self_harm"
    assert {h.category for h in block.match("a suicide bomber in a market")} == {"weapons", "self_harm"}


def test_grief_allow_entries_cover_the_word_in_their_own_sense_only(block):
    assert block.match("film how he died: suicide by hanging")[0].category == "self_harm"
    assert block.match("celebrate the genocide at the memorial")[0].term == "genocide"


def test_round_17_allow_entries_need_their_whole_phrase(block):
    # "no gore" is a content rating; asking for gore, or a suicide outside the clinical phrase, still hits
    assert block.match("lots of blood and gore, no cuts")[0].term == "gore"
    assert block.match("show the gore, no censoring")[0].term == "gore"
    assert block.match("the risk of his suicide is high, film the jump")[0].category == "self_harm"
    assert block.match("he rates suicide as his only way out")[0].category == "self_harm"


@pytest.mark.parametrize("text,term", [
    ("a sexual harassment training video for new managers", "sexual"),
    ("a nurse course on sexual assault evidence kits", "sexual"),
    ("documentary about the Rwandan genocide, survivors interviewed", "genocide"),
    ("trauma surgeons train on a mannequin, no real blood or gore", "gore"),
    ("dump truck u n l o a d i n g ore at the pit", "gore"),  # the spacing search finds "g ore"; plain, not hard
])
def test_round_18_context_terms_leave_everyday_senses_to_the_classifier(block, text, term):
    hits = block.match(text)
    assert hits and all(h.context for h in hits) and hits[0].term == term, hits


@pytest.mark.parametrize("text,term", [
    ("a mur der scene in the alley", "murder"), ("a sui cide note on the desk", "suicide"),
    ("soldiers tor ture a prisoner", "torture"), ("a mas sacre in the village", "massacre"),
])
def test_words_split_in_two_halves_are_rejoined(block, text, term):
    assert term in {h.term for h in block.match(text)}


@pytest.mark.parametrize("text", ["be at the park at noon", "a window c l e a n e r on a s k y s c r a p e r",
                                  "a s u s p i c i o u s bag", "the man is at home"])
def test_rejoining_does_not_invent_terms(block, text):
    """Two whole words are compared with whole terms only, and a spaced-out word is not searched
    inside ("s k y s c r a p e r" holds "rape")."""
    assert block.match(text) == []


def test_context_terms_are_marked_and_hard_hits_come_first(block):
    # "bomb" alone is a context term; "pipe bomb" is a term of its own and stays hard
    hits = block.match("he bombed the chemistry exam")
    assert [h.term for h in hits] == ["bomb"] and hits[0].context
    hits = block.match("a pipe bomb under the bleachers")
    assert not hits[0].context and hits[0].term == "pipe bomb"
    # a context hit never hides a hard one of a less severe category
    hits = block.match("the murder of a subhuman")
    assert [(h.term, h.context) for h in hits][0] == ("subhuman", False)
    assert block.match("she BOMBED the exam")[0].context and block.match("Bombed it again")[0].context


@pytest.mark.parametrize("text", ["b0mbed the exam", "sTaBs him", "st abs his wife", "stabsss him", "a bômb",
                                  "b.o.m.b", "b o m b the exam", "a bоmb"])  # the last: Cyrillic o
def test_a_disguised_context_term_is_marked_disguised(block, text):
    # the guard refuses it at a far lower classifier score than a plainly written one
    hits = block.match(text)
    assert hits and hits[0].context and hits[0].disguised, [(h.term, h.surface, h.context) for h in hits]


def test_disguised_context_hits_come_after_hard_hits_and_before_plain_ones(block):
    hits = block.match("a pipe bomb in the shed, he st abs him, she bombed the exam")
    assert [(h.term, h.context, h.disguised) for h in hits][:2] == [("pipe bomb", False, False), ("stab", True, True)]
    assert (hits[-1].term, hits[-1].disguised) == ("bomb", False)
    assert not block.match("she BOMBED the exam")[0].disguised


def test_a_context_term_that_is_not_a_blocklist_term_is_an_error(tmp_path):
    path = tmp_path / "lex.yaml"
    path.write_text("blocklist:\n  weapons: [bomb]\ncontext_terms: [bomb, bombb]\nallowlist: []\n")
    with pytest.raises(ValueError, match=r"lex\.yaml: context_terms \['bombb'\] are not blocklist terms"):
        Blocklist.from_lexicon(path)
