from django.shortcuts import render


def catalog(request):
    return render(request, "actions/catalog.html", {"actions": []})
